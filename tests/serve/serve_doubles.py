"""Engine doubles for the server tests (``py:tests.serve.serve_doubles:Class`` specs, built in the
server process).

``LoggedEngine`` is the evaluation's scripted atomic-format engine that appends one line per
``generate`` call to the file ``log`` (the number of requests in the call), so a test sees from
outside how the server batched its searches. ``VisionEngine`` takes images and answers with the
width of the first image it was given (opened from the path the server wrote).
"""

from __future__ import annotations

from slowthink.images import open_image
from tests.evaluate.eval_doubles import ScriptedEngine


class LoggedEngine(ScriptedEngine):
    def __init__(self, log: str = "", **options) -> None:
        super().__init__(**options)
        self.log = str(log)

    def generate(self, requests):
        if self.log:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(f"{len(requests)}\n")
        return super().generate(requests)


class VisionEngine(ScriptedEngine):
    def __init__(self, **options) -> None:
        super().__init__(p_right=1.0, **options)
        self.supports_images = True

    def _answer(self, r, i: int) -> str:
        images = r.images
        return str(open_image(images[0]).size[0]) if images else "0"
