"""The facial-expression network (Keras 3; runs on the torch backend by default, TensorFlow optionally).

48x48 grey crops in, FER-2013's 7 classes out (same order as FER: angry, disgust, fear, happy, sad, surprise,
neutral — the shared labels by another name). The network is fully convolutional up to global pooling, so the same
weights take any window size: the first three training stages fed it random 40x40 windows, the last two random
48x48 windows of the crop padded with its reflection (`training/face.py --crop`). Serving feeds the whole 48x48 crop
(CROP) plus its mirror.
"""

from __future__ import annotations

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_TO_SHARED = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "joy",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}
INPUT = 48
CROP = 48  # the window served and, by default, trained on


def build_expression_net(width: int = 32, dropout: float = 0.3, crop: int = CROP):
    """A compact VGG-style CNN: 4 stages of two 3x3 conv+BN+ReLU, max-pool between, global pooling, dense head.
    ~1.2M parameters at width 32. Input [B, crop, crop, 1] float in [0, 1]; output [B, 7] logits; the 256-d
    `embedding` layer is what fusion consumes."""
    import keras
    from keras import layers

    inp = keras.Input((crop, crop, 1), name="face")
    x = layers.Rescaling(2.0, offset=-1.0)(inp)  # [0, 1] -> [-1, 1]
    for i, mult in enumerate((1, 2, 4, 8)):
        for _ in range(2):
            x = layers.Conv2D(width * mult, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        if i < 3:
            x = layers.MaxPooling2D()(x)  # 48 -> 24 -> 12 -> 6
        x = layers.SpatialDropout2D(0.1 * (i + 1) / 2)(x) if i > 0 else x
    x = layers.GlobalAveragePooling2D()(x)  # [B, 8w]
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(256, activation="relu", name="embedding")(x)
    x = layers.Dropout(dropout)(x)
    out = layers.Dense(len(FER_CLASSES), name="logits")(x)
    return keras.Model(inp, out, name="persona_face_expression")


def center_crop(x, size: int = CROP):
    """[B, 48, 48, 1] -> the central [B, size, size, 1] window (numpy)."""
    o = (INPUT - size) // 2
    return x[:, o : o + size, o : o + size]
