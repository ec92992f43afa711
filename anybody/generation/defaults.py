"""The defaults of drawing, in one place (the API's signatures and the CLI's options and help read them).

Plain constants: importing this loads no model library.
"""

from anybody.methods.sefi import ATTENTION_LEVEL as SEFI_ATTENTION_LEVEL

NUM_IMAGES = 4
BATCH_SIZE = 4  # images drawn at once; more are drawn in turn, with the same pictures
STEPS = 50
GUIDANCE = 7.5
SEED = 42  # image i uses SEED + i
SCHEDULER = "ddim"  # or "model": the model's own scheduler
ATTENTION_LEVEL = SEFI_ATTENTION_LEVEL  # cross-attention level of `anybody attention`
ATTENTION_OUT = "attention.png"
