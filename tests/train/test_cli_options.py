"""The recipe options ``slowthink train sft`` and ``prm`` share (one ``RecipeFlags`` dataclass):
the same names and help in both commands, and flags over the recipe file's settings. No training."""

from __future__ import annotations

import typer

from slowthink.train.cli import RECIPE_FLAGS, RecipeFlags, app

SHARED = ["--config", "--lora", "--lr", "--epochs", "--max-steps", "--batch-size", "--max-length", "--device"]


def options_of(name: str) -> dict[str, tuple[str, ...]]:
    """``--option`` -> (its declarations, its help) for the command ``name``."""
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    return {
        p.opts[0]: (tuple(p.opts + p.secondary_opts), p.help)
        for p in command.params
        if p.param_type_name == "option"
    }


def test_sft_and_prm_take_the_same_recipe_options_in_the_same_order():
    sft, prm = options_of("sft"), options_of("prm")
    assert [o for o in sft if o in SHARED] == [o for o in prm if o in SHARED] == SHARED
    assert {o: sft[o] for o in SHARED} == {o: prm[o] for o in SHARED}
    assert sft["--lora"] == (("--lora", "--full"), "LoRA adapters (PEFT, merged on save) or all weights.")
    assert sft["--max-steps"][1] == "Optimizer steps (overrides --epochs)."
    assert list(prm)[:5] == ["--data", "--out", "--model", "--protocol", "--preset"]  # their own first


def test_flags_win_over_the_recipe_file_and_reach_the_recipe_fields(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rate: 0.5\nepochs: 3\nbatch_size: 4\nmax_length: 64\n")
    given = {name: None for name in RECIPE_FLAGS.names} | {"config": recipe, "lr": 0.01, "lora": True}
    r = RECIPE_FLAGS.build(given).recipe(protocol="token_cls")
    assert (r.learning_rate, r.epochs, r.batch_size, r.max_length, r.lora, r.protocol) == (
        0.01,
        3.0,
        4,
        64,
        True,
        "token_cls",
    )
    plain = RecipeFlags(max_steps=7, device="cpu").recipe()  # no file: the defaults under the flags
    assert (plain.learning_rate, plain.max_steps, plain.device, plain.lora) == (1e-5, 7, "cpu", False)
