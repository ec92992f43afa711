"""The face side of anybody: from one photo to the aligned face and its recognizer features.

    from anybody.face import prepare_face, write_face_preview
    face = prepare_face("me.jpg")          # face.aligned (512 px), face.descriptor (128,), ...
    write_face_preview("me.jpg", "out/")   # what will be learned, as two PNGs

Modules, one job each: `photo` (any image file to upright RGB), `models` (dlib's model files),
`detection` (faces and landmarks), `geometry` (similarity fit, padded warp), `alignment` (the template),
`encoders` (frozen recognizers), `prepare` (all of it for learning), `preview` (pictures for the user).
"""

from typing import TYPE_CHECKING

from anybody.lazy import lazy_exports

if TYPE_CHECKING:
    from anybody.face.alignment import TEMPLATE, TEMPLATE_SIZE, align_face, alignment_matrix, template
    from anybody.face.detection import DETECTORS, MIN_FACE_SIZE, Face, choose_face, find_faces
    from anybody.face.encoders import DlibFaceEncoder, FaceEncoder, OnnxFaceEncoder, get_face_encoder
    from anybody.face.photo import MAX_PIXELS, load_photo
    from anybody.face.prepare import FaceInput, prepare_face
    from anybody.face.preview import write_face_preview

_EXPORTS = {
    "alignment": ("TEMPLATE", "TEMPLATE_SIZE", "align_face", "alignment_matrix", "template"),
    "detection": ("DETECTORS", "MIN_FACE_SIZE", "Face", "choose_face", "find_faces"),
    "encoders": ("DlibFaceEncoder", "FaceEncoder", "OnnxFaceEncoder", "get_face_encoder"),
    "photo": ("MAX_PIXELS", "load_photo"),
    "prepare": ("FaceInput", "prepare_face"),
    "preview": ("write_face_preview",),
}
__all__ = [
    "DETECTORS",
    "MAX_PIXELS",
    "MIN_FACE_SIZE",
    "TEMPLATE",
    "TEMPLATE_SIZE",
    "DlibFaceEncoder",
    "Face",
    "FaceEncoder",
    "FaceInput",
    "OnnxFaceEncoder",
    "align_face",
    "alignment_matrix",
    "choose_face",
    "find_faces",
    "get_face_encoder",
    "load_photo",
    "prepare_face",
    "template",
    "write_face_preview",
]
__getattr__ = lazy_exports(__name__, {name: module for module, names in _EXPORTS.items() for name in names})
