"""Head pose of a face, yaw, pitch and roll in degrees, from 2D points of the frame: a
perspective-n-point fit (OpenCV's `solvePnP`) of a generic 3D face to EmoNet's 68 landmarks
(`pose_from_landmarks`) or to BlazeFace's six keypoints (`pose_from_keypoints`).

The generic face is a subset of the vertices of MediaPipe's canonical face model
(`mediapipe/modules/face_geometry/data/canonical_face_model.obj`, 468 vertices in
centimetres; MediaPipe, Copyright The MediaPipe Authors, Apache License 2.0, the licence of
the BlazeFace weights we ship: see faces/detection/data/LICENSE and NOTICE, which names this
use too). Which vertex stands for which
of the 68 iBUG landmarks and of BlazeFace's keypoints is our choice, written below. The jaw
line (landmarks 0-16 but the chin, 8) is left out: it follows the face's outline, which moves
over the face as the head turns. Eyelids (37, 38, 40, 41, 43, 44, 46, 47), the nose bridge
(28, 29) and the inner nostrils (32, 34) and outer lips (49, 50, 52, 53, 55, 56, 58, 59) and
inner mouth corners (60, 64) and the inner lips (61, 63, 65, 67) are left out as well:
26 landmarks remain.

Camera: a pinhole whose focal length is the frame's width in pixels (a horizontal field of
view of 53 degrees, about a webcam's or a phone's), centred on the frame's centre, without
distortion. Axes are OpenCV's: x to the right of the image, y down, z away from the camera.

Angles (conventions): the fitted rotation R (head -> camera, the head's axes those of the
camera for a face looking straight into it) is R = Rz(roll) . Ry(-yaw) . Rx(-pitch), about the
camera's axes, so that
- yaw > 0: the face turns towards the image's right (the person turns to their left);
- pitch > 0: the face turns up (chin up), < 0 down;
- roll > 0: the head leans clockwise as the image shows it (towards the image's right).
A mirrored video gives the opposite yaw and roll and the same pitch. All three are 0 for a face
looking into the camera and lie in [-180, 180] (yaw in [-90, 90]).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# MediaPipe canonical face model vertices used (index: x, y, z in cm; x to the image's right,
# y up, z towards the camera, as the .obj file has them).
CANONICAL_VERTICES: dict[int, tuple[float, float, float]] = {
    70: (-5.720968, 4.254584, 2.830852),
    63: (-4.985894, 4.802461, 3.751977),
    105: (-3.986562, 5.109487, 4.466315),
    66: (-2.760292, 5.100971, 5.015990),
    107: (-1.395634, 5.011963, 5.316032),
    336: (1.395634, 5.011963, 5.316032),
    296: (2.760292, 5.100971, 5.015990),
    334: (3.986562, 5.109487, 4.466315),
    293: (4.985894, 4.802461, 3.751977),
    300: (5.720968, 4.254584, 2.830852),
    168: (0.000000, 3.271027, 5.236015),
    1: (0.000000, -1.126865, 7.475604),
    98: (-1.405627, -1.714196, 5.241087),
    2: (0.000000, -2.089024, 6.058267),
    327: (1.405627, -1.714196, 5.241087),
    33: (-4.445859, 2.663991, 3.173422),
    133: (-1.856432, 2.585245, 3.757904),
    362: (1.856432, 2.585245, 3.757904),
    263: (4.445859, 2.663991, 3.173422),
    61: (-2.456206, -4.342621, 4.283884),
    0: (0.000000, -3.406404, 5.979507),
    291: (2.456206, -4.342621, 4.283884),
    17: (0.000000, -5.365123, 5.535441),
    13: (0.000000, -3.994436, 5.219482),
    14: (0.000000, -4.542400, 5.404754),
    152: (0.000000, -9.403378, 4.264492),
    159: (-3.177186, 2.964136, 3.876973),
    145: (-3.177186, 2.294265, 3.775704),
    386: (3.177186, 2.964136, 3.876973),
    374: (3.177186, 2.294265, 3.775704),
    234: (-7.664182, 0.673132, -2.435867),
    454: (7.664182, 0.673132, -2.435867),
}

# iBUG 68-point landmark (0-based; 36-41 the eye on the image's left, the person's right) ->
# the canonical vertex that stands for it.
LANDMARK_VERTICES: dict[int, int] = {
    8: 152,  # chin
    17: 70, 18: 63, 19: 105, 20: 66, 21: 107,  # brow on the image's left, outer to inner
    22: 336, 23: 296, 24: 334, 25: 293, 26: 300,  # the other brow, inner to outer
    27: 168,  # nasion
    30: 1,  # nose tip
    31: 98, 33: 2, 35: 327,  # nostril wings, subnasale
    36: 33, 39: 133, 42: 362, 45: 263,  # eye corners
    48: 61, 51: 0, 54: 291, 57: 17,  # mouth corners, outer lip centres
    62: 13, 66: 14,  # inner lip centres
}  # fmt: skip

# BlazeFace's keypoints, in its order (detection.boxstream.KEYPOINT_NAMES: right eye, left
# eye, nose tip, mouth centre, right ear tragion, left ear tragion; its "right" eye is the
# one on the image's left, the person's right) -> the vertices whose mean stands for it.
KEYPOINT_VERTICES: tuple[tuple[int, ...], ...] = (
    (33, 133, 159, 145),  # eye centre: the mean of its corners and lid centres
    (362, 263, 386, 374),
    (1,),
    (13, 14),
    (234,),  # the face's outline at the ear, in front of the tragion
    (454,),
)

NO_POSE = (math.nan, math.nan, math.nan)
# Fits whose points miss their model by more than this share of the face's size are no pose
# (points that are no face: a stand-in model's landmarks, a wrong keypoint).
MAX_REPROJECTION = 0.25


def _camera_axes(points: np.ndarray) -> np.ndarray:
    """Canonical-model coordinates (x right, y up, z towards the camera) -> OpenCV's camera
    axes (x right, y down, z away), centred on their mean."""
    points = np.asarray(points, dtype=np.float64) * np.array([1.0, -1.0, -1.0])
    return points - points.mean(axis=0)


LANDMARK_INDICES = np.array(sorted(LANDMARK_VERTICES))
LANDMARK_MODEL = _camera_axes([CANONICAL_VERTICES[LANDMARK_VERTICES[i]] for i in LANDMARK_INDICES])
KEYPOINT_MODEL = _camera_axes(
    [np.mean([CANONICAL_VERTICES[v] for v in group], axis=0) for group in KEYPOINT_VERTICES]
)


def camera_matrix(width: int, height: int) -> np.ndarray:
    """The pinhole camera of every fit: focal length the frame's width, centre the frame's."""
    return np.array(
        [[width, 0.0, width / 2.0], [0.0, width, height / 2.0], [0.0, 0.0, 1.0]], dtype=np.float64
    )


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The head's rotation (head -> camera axes) of angles in degrees, by the conventions
    of the module docstring."""
    a, b, c = np.radians([-pitch, -yaw, roll])
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a rotation, the inverse of rotation_from_angles."""
    r = np.asarray(rotation, dtype=np.float64)
    beta = math.asin(max(-1.0, min(1.0, -r[2, 0])))
    alpha = math.atan2(r[2, 1], r[2, 2])
    gamma = math.atan2(r[1, 0], r[0, 0])
    return -math.degrees(beta), -math.degrees(alpha), math.degrees(gamma)


def fit_pose(
    model: np.ndarray, points: np.ndarray, frame_size: tuple[int, int]
) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of the 3D `model` points (n, 3) seen at the frame points
    `points` (n, 2) in pixels; NaN three times where the points do not fit a face."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) != len(model) or not np.isfinite(points).all():
        return NO_POSE
    spread = float(np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1).mean()))
    model_spread = float(np.sqrt((model[:, :2] ** 2).sum(axis=1).mean()))
    if spread <= 1e-6:
        return NO_POSE
    width, height = frame_size
    camera = camera_matrix(width, height)
    # Start from a face looking into the camera where the points are, at the distance their
    # spread gives: the iterative fit then finds the nearest pose, never the mirror one
    # behind the camera.
    depth = width * model_spread / spread
    centre = points.mean(axis=0)
    rvec = np.zeros((3, 1))
    tvec = np.array(
        [[(centre[0] - width / 2.0) * depth / width], [(centre[1] - height / 2.0) * depth / width],
         [depth]]
    )  # fmt: skip
    try:
        found, rvec, tvec = cv2.solvePnP(
            model, points, camera, None, rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE
        )
    except cv2.error:
        return NO_POSE
    if not found or not np.isfinite(rvec).all() or tvec[2, 0] <= 0:
        return NO_POSE
    projected, _ = cv2.projectPoints(model, rvec, tvec, camera, None)
    error = float(np.sqrt(((projected.reshape(-1, 2) - points) ** 2).sum(axis=1).mean()))
    if error > MAX_REPROJECTION * spread:
        return NO_POSE
    rotation, _ = cv2.Rodrigues(rvec)
    return angles_from_rotation(rotation)


def pose_from_landmarks(
    landmarks: np.ndarray, frame_size: tuple[int, int]
) -> tuple[float, float, float]:
    """The pose of EmoNet's 68 landmarks (68, 2) in frame pixels; `frame_size` (width, height)."""
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if len(landmarks) != 68:
        return NO_POSE
    return fit_pose(LANDMARK_MODEL, landmarks[LANDMARK_INDICES], frame_size)


def pose_from_keypoints(
    keypoints: np.ndarray, frame_size: tuple[int, int]
) -> tuple[float, float, float]:
    """The pose of BlazeFace's six keypoints (6, 2) x, y in frame pixels, in its order."""
    return fit_pose(KEYPOINT_MODEL, keypoints, frame_size)
