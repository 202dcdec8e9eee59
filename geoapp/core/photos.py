"""Before/after photos (整治前后照片) of features: who may add, see and delete them, and what a photo must be.

Flask-free. A layer takes photos when its definition says ``photos: {visibility: public|internal}``;
one without ``photos:`` takes none. Editors of the layer add and delete them
(``permissions.require_edit``); staff see every photo; the public sees a layer's photos only when
they are public and only while the feature exists (a deleted feature's photos wait, unseen, for
its restoration).

An upload is checked by its content, never by its file name or the Content-Type it was sent
with: Pillow must read it as JPEG, PNG or WebP (and only those decoders are tried), its pixels
must be at most :data:`MAX_PIXELS` (a small file may unpack into gigabytes: it is refused from
its header, before it is decoded), and it must decode whole. It is then turned upright
(``ImageOps.exif_transpose``), its colours brought to sRGB, and encoded again in its own format
without any of the metadata it came with (EXIF with the camera and the place it was taken, XMP,
the ICC profile, PNG text, JPEG comments), with a thumbnail of at most :data:`THUMB_SIDE` pixels.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import threading
import time
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from geoapp.core import permissions
from geoapp.core.layers import Layer, Registry
from geoapp.core.messages import Words
from geoapp.errors import InvalidParameter, NotFound, PayloadTooLarge
from geoapp.store.base import Actor, FeatureReader
from geoapp.store.photos import NewPhoto, Photo

#: the formats a photo may be in (Pillow's names), and what each is served as
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
#: the most pixels a photo may have: 50 megapixels, a phone's largest (8,160 x 6,120). Pillow holds 4 bytes a
#: pixel, 200 MB at 50 MP, and processing holds one such copy (measured: 1.4-1.9 times the photo's 3 bytes a pixel
#: with the encoded result, 200-270 MB at 50 MP), two for a moment when it has to be turned upright or has
#: transparency (2.7 times: 380 MB at 50 MP). One photo is processed at a time in a server process.
MAX_PIXELS = 50_000_000
#: a WebP photo may have fewer: libwebp's decoder (through Pillow) keeps two canvases of the photo's size besides the
#: copy it hands over (measured: 5.4-6 times 3 bytes a pixel), so that 20 MP (5,472 x 3,648) stays under 400 MB too
MAX_WEBP_PIXELS = 20_000_000
#: the longest side of a thumbnail, in pixels
THUMB_SIDE = 320
MAX_CAPTION = 200
#: photos one feature may have
MAX_PER_FEATURE = 20
STAGES = ("before", "after")
STAGE_WORDS = {"before": Words("整治前", "before the works"), "after": Words("整治后", "after the works")}
#: characters that reorder the text around them: a caption could show other words than it holds
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_JPEG_QUALITY = 90
_THUMB_QUALITY = 80
#: held while a photo is decoded and encoded again
_PROCESSING = threading.Lock()
#: Pillow's errors on a file that is not a readable image of its kind (a damaged or hostile file)
_UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError)


def _refuse(parameter: str, en: str, zh: str, error: type = InvalidParameter):
    return error(en, parameter=parameter, text=Words(zh, en))


def _mb(limit: int) -> str:
    return f"{limit / 1024 / 1024:g}"


@dataclass(frozen=True)
class Processed:
    """A photo as it is stored: re-encoded without metadata, with its thumbnail."""

    media_type: str
    width: int
    height: int
    image: bytes
    thumb: bytes


def process(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Processed:
    """Read an uploaded file as a photo and encode it again without its metadata; refuse what is not one.

    Raises :class:`~geoapp.errors.InvalidParameter` naming ``file`` for anything other than a whole JPEG,
    PNG or WebP image of at most ``max_pixels`` pixels (:data:`MAX_WEBP_PIXELS` at most for WebP). One at a time
    (the others wait): several uploads at once do not hold several photos' memory (see :data:`MAX_PIXELS`).
    """
    with _PROCESSING:
        return _process(data, max_pixels)


def _process(data: bytes, max_pixels: int) -> Processed:
    not_a_photo = _refuse(
        "file",
        "the file must be a photo in JPEG, PNG or WebP format; this one is not (or it is damaged)",
        "文件须为 JPEG、PNG 或 WebP 格式的照片；该文件不是（或已损坏）",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as probe:
                kind, size = _kind(probe), probe.size
                if kind == "WEBP":
                    max_pixels = min(max_pixels, MAX_WEBP_PIXELS)
                _check_size(size, max_pixels)
                probe.verify()  # structure and checksums, before anything is decoded
            im = Image.open(io.BytesIO(data), formats=list(FORMATS))
            if im.size != size or _kind(im) != kind:
                raise not_a_photo
            if kind != "JPEG" and getattr(im, "is_animated", False):
                raise _refuse(
                    "file",
                    "the file is an animation; send a single photo",
                    "该文件为动画图片；请上传单张照片",
                )
            im.load()
            icc = im.info.get("icc_profile")
            transparency = im.info.get("transparency")
            if kind == "WEBP":
                # Pillow's WebP image keeps libwebp's decoder, two canvases of the photo's size, as long as it
                # lives: the upright copy (no more memory than decoding took) lets them go before the encoding
                decoded, im = im, ImageOps.exif_transpose(im)
                decoded.close()
                del decoded
            else:
                ImageOps.exif_transpose(im, in_place=True)  # a copy only when it has to be turned
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels(max_pixels) from None
        except InvalidParameter:
            raise
        except _UNREADABLE:
            raise not_a_photo from None
    clean = _srgb(im, icc)  # the same image, unless a profile or CMYK has to be converted
    if clean is not im:
        im.close()
    del im
    clean.info = {"transparency": transparency} if transparency is not None and clean.mode in ("P", "L", "RGB") else {}
    width, height = clean.size
    image = _encode(clean, kind, _JPEG_QUALITY)
    thumb = _thumbnail(clean, kind)
    clean.close()
    return Processed(FORMATS[kind], width, height, image, _encode(thumb, kind, _THUMB_QUALITY, optimize=True))


def _thumbnail(im: Image.Image, kind: str) -> Image.Image:
    """A new image of at most :data:`THUMB_SIDE` pixels a side, made from a reduced copy (never a full one, but
    for a mode resampling does not take, and for transparency, which Pillow premultiplies at full size)."""
    if im.mode not in ("L", "RGB", "RGBA"):
        im = im.convert("RGBA" if im.has_transparency_data and kind != "JPEG" else "RGB")
    scale = min(1.0, THUMB_SIDE / max(im.size))
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    thumb = im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)  # reduce() by a whole factor, then resample
    thumb.info = {}
    return thumb


def _kind(im: Image.Image) -> str:
    # a camera's multi-picture JPEG (MPO) is a JPEG with more pictures after the first: the first is the photo
    return "JPEG" if im.format == "MPO" else str(im.format)


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise _too_many_pixels(max_pixels, size)


def _too_many_pixels(max_pixels: int, size: tuple[int, int] | None = None) -> InvalidParameter:
    said = f" ({size[0]:,} x {size[1]:,})" if size else ""
    mp = f"{max_pixels / 1_000_000:g}"
    return _refuse(
        "file",
        f"the photo has too many pixels{said}; at most {mp} million are accepted",
        f"照片像素过多{said}；最多 {mp} 百万像素",
    )


def _srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """The image in sRGB without its colour profile (so it looks the same without it); CMYK as RGB. An RGB or
    RGBA image is converted in place (no second copy of its pixels)."""
    target = "RGBA" if im.mode in ("RGBA", "LA", "PA") else "RGB"
    if icc and im.mode in ("RGB", "RGBA", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            mode = "RGBA" if im.mode == "RGBA" else "RGB"
            srgb = ImageCms.createProfile("sRGB")
            if im.mode == mode:
                ImageCms.profileToProfile(im, source, srgb, outputMode=mode, inPlace=True)
                return im
            return ImageCms.profileToProfile(im, source, srgb, outputMode=mode)
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a profile that cannot be read: the pixels as they are, without it
    if im.mode == "CMYK":
        return im.convert(target)
    return im


def _encode(im: Image.Image, kind: str, quality: int, *, optimize: bool = False) -> bytes:
    """``im`` in ``kind`` with no metadata: nothing of the upload's EXIF, XMP, ICC profile or text is written.

    ``optimize`` (JPEG's optimised Huffman tables, a few per cent smaller) makes libjpeg hold every coefficient of
    the image, as much memory again as the decoded photo: for thumbnails only."""
    out = io.BytesIO()
    if kind == "JPEG":
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")
        im.save(out, "JPEG", quality=quality, optimize=optimize, exif=b"", icc_profile=None, comment=b"")
    elif kind == "PNG":
        im.save(out, "PNG", exif=b"", icc_profile=None)
    else:
        im.save(out, "WEBP", quality=quality, method=4, exif=b"", icc_profile=None, xmp=b"")
    return out.getvalue()


def check_stage(stage: object) -> str:
    if not isinstance(stage, str) or stage.strip() not in STAGES:
        raise _refuse(
            "stage",
            "stage must be before or after (the works)",
            "请选择照片拍摄于整治前（before）还是整治后（after）",
        )
    return stage.strip()


def check_caption(caption: object) -> str:
    if caption is None:
        return ""
    if not isinstance(caption, str):
        raise _refuse("caption", "caption must be text", "说明须为文字")
    caption = caption.strip()
    if len(caption) > MAX_CAPTION:
        raise _refuse(
            "caption",
            f"caption must be at most {MAX_CAPTION} characters, not {len(caption)}",
            f"说明最多 {MAX_CAPTION} 个字，现有 {len(caption)} 个",
        )
    if any(unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI_CONTROLS for c in caption):
        raise _refuse(
            "caption",
            "caption must be one line of text without control characters",
            "说明须为一行文字，不能含控制字符（包括换行）",
        )
    return caption


class PhotoArchive:
    """Add, list, read and delete the photos of features, for a caller (see the module's docstring)."""

    def __init__(
        self,
        store,
        reader: FeatureReader,
        registry: Registry,
        *,
        max_bytes: int,
        max_pixels: int = MAX_PIXELS,
        max_per_feature: int = MAX_PER_FEATURE,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        #: what is now (the service's clock: tests move it)
        self.clock = clock
        self.reader = reader
        self.registry = registry
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_per_feature = max_per_feature

    # -- who sees what ------------------------------------------------------------------------

    @staticmethod
    def layer_shows(who, layer: Layer) -> bool:
        """Whether the caller may see photos of ``layer`` at all: staff if it takes photos, everyone if they
        are public (the map offers photos on these layers)."""
        if layer.photos is None:
            return False
        return permissions.is_staff(who) or layer.photos.visibility == "public"

    def is_public(self, layer_id: str, fid: int) -> bool:
        """Whether everyone may see this feature's photos now (a cache may then keep them for everyone)."""
        if layer_id not in self.registry:
            return False
        photos = self.registry[layer_id].photos
        return photos is not None and photos.visibility == "public" and self.reader.get(layer_id, fid) is not None

    def _may_see(self, who, layer_id: str, fid: int) -> bool:
        if layer_id not in self.registry or not self.layer_shows(who, self.registry[layer_id]):
            return False
        return permissions.is_staff(who) or self.reader.get(layer_id, fid) is not None

    # -- reading ------------------------------------------------------------------------------

    def list(self, who, layer_id: str, fid: int) -> list[Photo]:
        """The feature's photos, oldest first; 404 (saying nothing more) for photos the caller may not see."""
        self.registry.require(layer_id)
        if not self._may_see(who, layer_id, fid):
            raise _no_photos(layer_id, fid)
        found = self.store.photos(layer_id, fid)
        if not found and self.reader.get(layer_id, fid) is None:
            raise _no_photos(layer_id, fid)
        return found

    def read(self, who, photo_id: int, *, thumb: bool = False) -> tuple[Photo, bytes]:
        """A photo and its image (or thumbnail); 404 alike for a photo that is not there and one not to be seen."""
        found = self.store.photo(photo_id, image="thumb" if thumb else "image")
        if found is None or not self._may_see(who, found[0].layer, found[0].fid):
            raise NotFound(f"no photo {photo_id}", parameter="photo")
        return found

    # -- changing -----------------------------------------------------------------------------

    def add(self, who: Actor, layer_id: str, fid: int, *, data: bytes, stage: object, caption: object) -> Photo:
        """Attach a photo to an existing feature: checked, re-encoded without metadata, stored with its audit row."""
        layer = self.registry.require(layer_id)
        permissions.require_edit(who, layer)
        if layer.photos is None:
            raise NotFound(f"layer {layer_id} takes no photos", parameter="layer")
        if self.reader.get(layer_id, fid) is None:
            raise NotFound(f"no feature {fid} in layer {layer_id}", parameter="fid")
        stage, caption = check_stage(stage), check_caption(caption)
        if not data:
            raise _refuse("file", "choose a photo to upload (file)", "请选择要上传的照片")
        if len(data) > self.max_bytes:
            raise _refuse(
                "file",
                f"the photo is {_mb(len(data))} MB; at most {_mb(self.max_bytes)} MB are accepted",
                f"照片大小为 {_mb(len(data))} MB，最多 {_mb(self.max_bytes)} MB",
                PayloadTooLarge,
            )
        if self.store.photo_count(layer_id, fid) >= self.max_per_feature:  # before the work of decoding it
            raise self._full()
        done = process(data, max_pixels=self.max_pixels)
        photo = NewPhoto(
            stage=stage,
            caption=caption,
            media_type=done.media_type,
            width=done.width,
            height=done.height,
            digest=hashlib.sha256(done.image).hexdigest(),
            image=done.image,
            thumb=done.thumb,
            uploaded_at=dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat(timespec="milliseconds"),
        )
        try:
            return self.store.add_photo(layer_id, fid, photo, limit=self.max_per_feature, actor=who)
        except InvalidParameter as exc:  # another upload took the last place meanwhile
            if exc.parameter == "file":
                raise self._full() from None
            raise

    def delete(self, who: Actor, photo_id: int, *, of: tuple[str, int] | None = None) -> Photo:
        """Remove a photo for good (editors of its layer), with its audit row; ``of``: the (layer, fid) it must
        belong to (a page's form names the feature too)."""
        found = self.store.photo(photo_id)
        if found is not None and of is not None and (found[0].layer, found[0].fid) != of:
            found = None
        if found is None or not self._may_see(who, found[0].layer, found[0].fid):
            raise NotFound(f"no photo {photo_id}", parameter="photo")
        photo = found[0]
        permissions.require_edit(who, self.registry[photo.layer])
        return self.store.delete_photo(photo_id, actor=who)

    def _full(self) -> InvalidParameter:
        n = self.max_per_feature
        return _refuse(
            "file",
            f"a feature may have at most {n} photos and this one has them; delete one first",
            f"每个要素最多 {n} 张照片，已满；请先删除一张",
        )


def _no_photos(layer_id: str, fid: int) -> NotFound:
    # the same words whether the layer takes no photos, hides them, or the feature is not there
    return NotFound(f"no photos of feature {fid} in layer {layer_id}", parameter="fid")
