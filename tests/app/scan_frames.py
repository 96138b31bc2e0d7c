"""Camera frames for the scanner tests: real images of QR codes (made with ``qrcode``, as the
receipts' are), drawn on a grey background like a phone camera's view, plus frames with no code,
a blurred code and a code cut in half; and :class:`FrameList`, the one fake the scanner tests
use: a camera (there is none on this machine) that gives these frames one after the other."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFilter

from pos_client.app.scanner import CameraUnavailable, Frame

SIZE = (640, 480)


def _scene() -> Image.Image:
    scene = Image.new("RGBA", SIZE, (118, 112, 104, 255))
    draw = ImageDraw.Draw(scene)
    draw.rectangle((40, 300, 600, 470), fill=(92, 70, 52, 255))  # a table edge
    return scene


def qr_image(text: str, *, box: int = 6) -> Image.Image:
    code = qrcode.QRCode(border=2, box_size=box, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(text)
    code.make(fit=True)
    return code.make_image().get_image().convert("RGBA")


def qr_scene(text: str, *, blur: float = 0.0, keep: float = 1.0) -> Image.Image:
    """A camera view with the QR code of ``text`` in it; ``blur`` (Gaussian radius), ``keep`` the
    fraction of the code left visible (the rest covered, as a thumb or the frame edge does)."""
    scene = _scene()
    code = qr_image(text)
    side = min(code.size[0], 400)
    code = code.resize((side, side))
    if keep < 1.0:
        ImageDraw.Draw(code).rectangle((int(side * keep), 0, side, side), fill=(118, 112, 104, 255))
    scene.paste(code, ((SIZE[0] - side) // 2, (SIZE[1] - side) // 2))
    return scene.filter(ImageFilter.GaussianBlur(blur)) if blur else scene


def blank_scene() -> Image.Image:
    return _scene()


def frame_of(image: Image.Image) -> Frame:
    rgba = image.convert("RGBA")
    return Frame(rgba.tobytes(), rgba.size[0], rgba.size[1])


def frames_from(folder: Path) -> list[Frame]:
    """The PNG files of ``folder``, in name order, as frames."""
    return [frame_of(Image.open(p)) for p in sorted(folder.glob("*.png"))]


class FrameList:
    """A fake camera: ``open`` fails with ``fail`` if given; ``read`` gives the frames in order
    (the last one again and again when ``loop`` is false, from the start again when true)."""

    def __init__(self, frames: Sequence[Frame], *, loop: bool = False, fail: str | None = None) -> None:
        self.frames = list(frames)
        self.loop = loop
        self.fail = fail
        self.opened = self.closed = False
        self.reads = 0
        self.reads_after_close = 0
        self._next = 0
        self._lock = threading.Lock()

    def open(self) -> None:
        if self.fail is not None:
            raise CameraUnavailable(self.fail)
        self.opened = True

    def read(self) -> Frame | None:
        with self._lock:
            if self.closed:
                self.reads_after_close += 1
                return None
            if not self.frames:
                return None
            self.reads += 1
            index = self._next % len(self.frames) if self.loop else min(self._next, len(self.frames) - 1)
            self._next += 1
            return self.frames[index]

    def close(self) -> None:
        with self._lock:
            self.closed = True

    def preview(self) -> None:
        return None
