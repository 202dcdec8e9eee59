"""Reading zip archives safely: an uploaded Shapefile (or KMZ) is somebody else's file.

Every member's name and header is checked before anything is read: no path that climbs out
(``..``), starts at a root or a drive letter, or uses backslashes; no symbolic link (the zip's
external attributes say ``S_IFLNK``); no archive inside the archive; at most :data:`MAX_MEMBERS`
members, :data:`MAX_TOTAL_BYTES` uncompressed in all and a compression ratio of at most
:data:`MAX_RATIO` (a zip bomb claims little and inflates to gigabytes). Members are then read
with a hard cap on what each inflates to (the header may lie) and written into a private temporary
folder the caller removes. Flask-free.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from geoapp.core.messages import Words
from geoapp.errors import InvalidParameter

MAX_MEMBERS = 200
MAX_TOTAL_BYTES = 1024 * 1024 * 1024  # 1 GB inflated: far above any district's Shapefile
MAX_RATIO = 200  # real Shapefiles compress 3-20x; a bomb inflates thousands of times
#: members below this size are not held to the ratio (a tiny .cpg of zeros compresses well)
RATIO_FLOOR = 1024 * 1024
NESTED = (".zip", ".kmz", ".7z", ".rar", ".gz", ".tar", ".tgz", ".bz2", ".xz")
_DRIVE = re.compile(r"^[A-Za-z]:")


def refuse(en: str, zh: str, parameter: str = "file") -> InvalidParameter:
    return InvalidParameter(en, parameter=parameter, text=Words(zh=zh, en=en))


@dataclass(frozen=True)
class Member:
    name: str  # as in the archive (checked)
    size: int  # uncompressed, as the header says


def check_members(archive: zipfile.ZipFile, *, max_total: int = MAX_TOTAL_BYTES) -> list[Member]:
    """The archive's file members, each checked (see the module's docstring); refuse the whole archive otherwise."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise refuse(
            f"the archive holds {len(infos)} members; at most {MAX_MEMBERS} are accepted",
            f"压缩包内有 {len(infos)} 个文件，最多接受 {MAX_MEMBERS} 个",
        )
    members, total = [], 0
    for info in infos:
        name = info.filename
        shown = name[:80]
        if "\\" in name or name.startswith("/") or _DRIVE.match(name) or ".." in PurePosixPath(name).parts:
            raise refuse(
                f"the archive member {shown!r} points outside the archive (absolute path, '..' or backslash)",
                f"压缩包内的文件 {shown!r} 指向压缩包之外（绝对路径、“..”或反斜杠），已拒绝",
            )
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise refuse(
                f"the archive member {shown!r} is a symbolic link; links are not accepted",
                f"压缩包内的文件 {shown!r} 是符号链接，不予接受",
            )
        if info.is_dir():
            continue
        if "\x00" in name or any(ord(c) < 32 for c in name):
            raise refuse(f"the archive member {shown!r} has control characters in its name", "压缩包内文件名含控制字符")
        if name.lower().endswith(NESTED):
            raise refuse(
                f"the archive member {shown!r} is itself an archive; put the files directly into one zip",
                f"压缩包内的文件 {shown!r} 本身是压缩包；请把文件直接放进一个 zip",
            )
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise refuse(
                f"the archive member {shown!r} inflates {info.file_size // max(info.compress_size, 1)} times "
                f"(at most {MAX_RATIO}): refused as a possible zip bomb",
                f"压缩包内的文件 {shown!r} 解压后膨胀 {info.file_size // max(info.compress_size, 1)} 倍"
                f"（最多 {MAX_RATIO} 倍），疑为压缩炸弹，已拒绝",
            )
        total += info.file_size
        if total > max_total:
            raise refuse(
                f"the archive inflates to more than {max_total // 1024 // 1024} MB; refused",
                f"压缩包解压后超过 {max_total // 1024 // 1024} MB，已拒绝",
            )
        members.append(Member(name, info.file_size))
    return members


def open_zip(path: str | os.PathLike) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise refuse("the file is not a readable zip archive", "文件不是可读取的 zip 压缩包") from None


def extract(
    archive: zipfile.ZipFile, members: list[Member], folder: Path, *, max_total: int = MAX_TOTAL_BYTES
) -> list[Path]:
    """Write the checked ``members`` flat into ``folder`` (private, created by the caller); return their paths.

    Each member is read in blocks and stopped at the size its header claims, so a header that lies
    inflates nothing more. Only the base name is kept (no folders are made from the archive's names).
    """
    out, total = [], 0
    seen: set[str] = set()
    for member in members:
        base = PurePosixPath(member.name).name
        if not base or base.lower() in seen:
            raise refuse(
                f"the archive holds two files named {base!r}; give one Shapefile per zip",
                f"压缩包内有两个名为 {base!r} 的文件；每个 zip 请只放一套 Shapefile",
            )
        seen.add(base.lower())
        target = folder / base
        written = 0
        with archive.open(member.name) as src, open(target, "xb") as dst:
            while block := src.read(1024 * 1024):
                written += len(block)
                total += len(block)
                if written > member.size or total > max_total:
                    raise refuse(
                        f"the archive member {member.name[:80]!r} inflates beyond what its header says; refused",
                        f"压缩包内的文件 {member.name[:80]!r} 解压后超过其声明的大小，已拒绝",
                    )
                dst.write(block)
        out.append(target)
    return out


class ExtractedZip:
    """A checked zip extracted into a private temporary folder, removed on exit."""

    def __init__(self, path: str | os.PathLike, *, max_total: int = MAX_TOTAL_BYTES):
        self.path = Path(path)
        self.max_total = max_total
        self.folder: Path | None = None
        self.files: list[Path] = []

    def __enter__(self) -> ExtractedZip:
        with open_zip(self.path) as archive:
            members = check_members(archive, max_total=self.max_total)
            self.folder = Path(tempfile.mkdtemp(prefix="geoapp-import-"))  # mode 0700
            try:
                self.files = extract(archive, members, self.folder, max_total=self.max_total)
            except (zipfile.BadZipFile, EOFError, NotImplementedError):
                self.close()
                raise refuse(
                    "the zip archive is damaged or uses an unknown compression", "zip 压缩包已损坏或压缩方式不支持"
                ) from None
            except BaseException:
                self.close()
                raise
        return self

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __exit__(self, *exc) -> None:
        self.close()
