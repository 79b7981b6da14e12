"""`vae-serve` with every model call slowed by VAE_TEST_MODEL_DELAY_S seconds (for drain tests).

VAE_TEST_MODEL_DELAY_S=1 python -m tests.reliability.slow_server
"""

import os
import time

from app import cli
from app.inference import ModelService


def slowed(forward):
    delay = float(os.environ.get("VAE_TEST_MODEL_DELAY_S", "1"))

    def slow_forward(self, method, x):
        time.sleep(delay)
        return forward(self, method, x)

    return slow_forward


if __name__ == "__main__":
    ModelService.forward = slowed(ModelService.forward)
    cli.main()
