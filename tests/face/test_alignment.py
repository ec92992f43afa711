"""Alignment: the face lands on the template; at the border it is padded, never cropped or shifted."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from anybody.face import TEMPLATE, Face, align_face, alignment_matrix, find_faces, template
from anybody.face.alignment import FFHQ_TEMPLATE
from anybody.face.geometry import apply, fit_similarity

TEMPLATE_EYES = np.stack([TEMPLATE[2:4].mean(axis=0), TEMPLATE[0:2].mean(axis=0)])


def test_the_template_has_ffhq_framing():
    assert np.allclose(TEMPLATE_EYES, [[192.98, 240.07], [318.90, 240.07]], atol=0.01)
    assert np.allclose(TEMPLATE_EYES, FFHQ_TEMPLATE[:2], atol=0.2)  # FFHQ's eyes
    assert 314 < TEMPLATE[4, 1] < 371  # the nose base: below FFHQ's nose tip, above its mouth corners
    assert np.allclose(template(256), (TEMPLATE + 0.5) / 2 - 0.5)


def test_alignment_puts_the_eyes_on_the_template(photo, sample_input):
    aligned = sample_input.aligned
    assert aligned.size == (512, 512) and aligned.mode == "RGB"
    # Found again in the aligned image by the detector itself, the eyes are where the template says.
    again = find_faces(aligned)
    assert len(again) == 1
    assert np.abs(again[0].eye_centres - TEMPLATE_EYES).max() < 4
    assert np.abs(again[0].nose - TEMPLATE[4]).max() < 6
    # And the fitted transform maps the photo's landmarks onto the template within a few pixels.
    mapped = apply(alignment_matrix(sample_input.face), sample_input.face.landmarks)
    assert np.abs(mapped - TEMPLATE).max() < 5


def test_other_sizes_scale_the_template(photo, sample_faces):
    small = align_face(photo, sample_faces[0], size=256)
    halved = align_face(photo, sample_faces[0]).resize((256, 256), Image.Resampling.LANCZOS)
    assert small.size == (256, 256)
    assert np.abs(np.asarray(small, float) - np.asarray(halved, float)).mean() < 6


def test_a_face_cut_by_the_border_is_padded_not_shifted(photo, sample_faces):
    left = sample_faces[0].box[0]
    cut = photo.crop((left + 25, 40, 512, 512))  # the left of the face (and of her hair) is cut off
    faces = find_faces(cut)
    assert len(faces) == 1 and faces[0].box[0] < 0  # the box reaches past the edge
    aligned = align_face(cut, faces[0])
    assert aligned.size == (512, 512)
    pixels = np.asarray(aligned, float)
    # The part of the frame beyond the photo's left edge is filled (mirrored, blurred), not black.
    edge_in_output = apply(alignment_matrix(faces[0]), [[-0.5, 200.0]])[0, 0]
    assert edge_in_output > 40
    beyond = pixels[:, : int(edge_in_output) - 5]
    assert beyond.mean() > 60 and beyond.std() > 3
    # The face sits where the template says, as in the uncut photo.
    again = find_faces(aligned)
    assert len(again) == 1 and np.abs(again[0].eye_centres - TEMPLATE_EYES).max() < 15
    # Inside the photo the aligned image matches the one from the uncut photo (nothing shifted).
    whole = np.asarray(align_face(photo, sample_faces[0]), float)
    inside = slice(int(edge_in_output) + 30, 512)
    assert np.abs(pixels[150:400, inside] - whole[150:400, inside]).mean() < 25


def test_a_big_photo_is_reduced_without_aliasing(photo, sample_faces):
    big = photo.resize((2048, 2048), Image.Resampling.LANCZOS)
    face = sample_faces[0]
    scaled = Face(box=tuple(4 * value for value in face.box), landmarks=(face.landmarks + 0.5) * 4 - 0.5)
    aligned = np.asarray(align_face(big, scaled), float)
    reference = np.asarray(align_face(photo, sample_faces[0]), float)
    assert np.abs(aligned - reference).mean() < 6


@settings(max_examples=60, deadline=None)
@given(st.floats(-3.0, 3.0), st.floats(0.05, 20.0), st.floats(-500, 500), st.floats(-500, 500))
def test_the_similarity_fit_recovers_a_known_transform(angle, scale, shift_x, shift_y):
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    truth = np.hstack([scale * rotation, [[shift_x], [shift_y]]])
    source = TEMPLATE * 0.37 + 11.0
    fitted = fit_similarity(source, apply(truth, source))
    assert np.allclose(fitted, truth, atol=1e-6 * max(1.0, scale, abs(shift_x), abs(shift_y)))
