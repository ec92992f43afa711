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

# Drawing into a given picture, or in a given pose (anybody.generation.inputs and .control).
INPAINT_STRENGTH = 1.0  # the masked area is drawn anew from noise: what painting a mask usually means
IMG2IMG_STRENGTH = 0.75  # AUTOMATIC1111's denoising strength: the picture's layout stays, its look changes
MASK_PADDING = 32  # px of the picture around the mask's box that are drawn with it (A1111's "only masked" 32)
CONTROL_SCALE = 1.0  # how strongly the ControlNet steers (diffusers' controlnet_conditioning_scale)
CONTROL_KINDS = ("canny",)  # what --control-from can make from a photo
CANNY_THRESHOLDS = (100, 200)  # OpenCV's Canny hysteresis thresholds, as diffusers' and lllyasviel's examples

# Face swap (anybody.generation.swap).
SWAP_STRENGTH = 0.75  # enough for the identity's face while the photo's pose and light show (A1111 users: 0.6-0.8)
SWAP_PROMPT = "a photo of {}"  # around the identity's name: one of the prompts every method learns with
