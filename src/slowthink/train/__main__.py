"""``python -m slowthink.train sft|prm|export ...``: the ``slowthink train`` commands as a module, so
that ``accelerate launch -m slowthink.train sft ...`` runs them on several GPUs."""

from slowthink.clikit import main_entry
from slowthink.train.cli import app

if __name__ == "__main__":
    main_entry(app)
