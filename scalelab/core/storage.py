"""Where outputs live: a local path, or an object in S3-compatible storage named by an fsspec URL.

`Location` is one file or folder, `out/sample` or `s3://bucket/corpora/sample`, with the few
pathlib operations scalelab's writers use (`/`, exists, read, write, list, unlink). A local
location is a plain `pathlib.Path` underneath, so local outputs are exactly what they were.
An object store differs from a disk in three ways, handled here and nowhere else:

- it has no folders: a folder exists when some object's key starts with its prefix, making one
  does nothing and removing one does nothing;
- it has no rename, but a PUT is atomic per object (a reader sees all of the new object or none
  of it; S3's multipart uploads too): `atomic_path` (core/atomic.py) writes to a local
  temporary file and uploads it whole, where a disk writes beside the target and renames;
- other machines write into it: listings are never cached, so the driver sees the done records
  its workers wrote a moment ago.

Credentials and the endpoint come from where the storage's fsspec driver looks for them. For S3
(s3fs, `pip install 'scalelab[s3]'`): AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an
instance role; AWS_ENDPOINT_URL for an S3-compatible server (MinIO, Ceph, R2 ...); or fsspec's
config, e.g. FSSPEC_S3_ENDPOINT_URL=... or ~/.config/fsspec/s3.json ({"s3": {"endpoint_url": ...}}).
On a Ray cluster each node reads them from its own environment, as any S3 client there would.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Optional, Sequence

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

_LOCAL_SCHEME = "file://"


def is_url(where: str) -> bool:
    """A URL with a scheme other than file:// (which names a local path)."""
    return "://" in where and not where.startswith(_LOCAL_SCHEME)


@dataclass(frozen=True, order=True)
class Location:
    """A local path (as given, relative or absolute) or a URL `protocol://bucket/key`."""

    url: str

    @classmethod
    def of(cls, where: "str | Path | Location") -> "Location":
        if isinstance(where, Location):
            return where
        text = str(where)
        if is_url(text):
            return cls(text.rstrip("/"))
        return cls(str(Path(text.removeprefix(_LOCAL_SCHEME))))

    # -- naming --------------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        return not is_url(self.url)

    @property
    def path(self) -> Path:
        """The local path; a URL has none."""
        if not self.is_local:
            raise ValueError(f"{self.url}: object storage, not a local path")
        return Path(self.url)

    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0] if not self.is_local else "file"

    def __truediv__(self, name: str) -> "Location":
        if self.is_local:
            return Location(str(self.path / name))
        return Location(f"{self.url}/{name.strip('/')}")

    @property
    def name(self) -> str:
        return self.path.name if self.is_local else self.url.rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    @property
    def parent(self) -> "Location":
        if self.is_local:
            return Location(str(self.path.parent))
        scheme, rest = self.url.split("://", 1)
        return Location(f"{scheme}://{rest.rsplit('/', 1)[0]}") if "/" in rest else self

    def resolve(self) -> "Location":
        """Absolute (Ray workers do not share the driver's working directory); a URL already is."""
        return Location(str(self.path.resolve())) if self.is_local else self

    def __str__(self) -> str:
        return self.url

    # -- the filesystem behind a URL -----------------------------------------------------------
    def _remote(self) -> tuple[Any, str]:
        """The URL's fsspec filesystem (one instance per process, fsspec's cache) and the key it names."""
        import fsspec

        try:
            return fsspec.core.url_to_fs(self.url, use_listings_cache=False)
        except ImportError as exc:
            raise OSError(f"{self.url}: cannot open {self.protocol}:// storage ({exc}); "
                          f"for s3:// install scalelab[s3]") from None

    @property
    def fs(self) -> Any:
        return self._remote()[0]

    @property
    def key(self) -> str:
        """The URL as its filesystem names it (`bucket/key` for S3)."""
        return self._remote()[1]

    # -- queries -------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.exists() if self.is_local else self.fs.exists(self.key)

    def is_file(self) -> bool:
        return self.path.is_file() if self.is_local else self.fs.isfile(self.key)

    def is_dir(self) -> bool:
        return self.path.is_dir() if self.is_local else self.fs.isdir(self.key)

    def iterdir(self) -> list["Location"]:
        """What the folder holds, files and folders (empty when it does not exist), sorted."""
        if self.is_local:
            return sorted(Location(str(p)) for p in self.path.iterdir()) if self.path.is_dir() else []
        return sorted(self / entry["name"].rsplit("/", 1)[-1] for entry in self._listing())

    def files(self) -> list["Location"]:
        """The files directly in the folder, sorted; one listing on an object store."""
        if self.is_local:
            return [entry for entry in self.iterdir() if entry.path.is_file()]
        return sorted(self / e["name"].rsplit("/", 1)[-1] for e in self._listing() if e["type"] == "file")

    def glob(self, pattern: str) -> list["Location"]:
        """Files of the folder whose name matches `pattern` (no `/`), sorted."""
        if self.is_local:
            return sorted(Location(str(p)) for p in self.path.glob(pattern) if p.is_file())
        return [f for f in self.files() if fnmatch.fnmatchcase(f.name, pattern)]

    def _listing(self) -> list[dict[str, Any]]:
        try:
            return self.fs.ls(self.key, detail=True)
        except FileNotFoundError:
            return []

    # -- reading -------------------------------------------------------------------------------
    def open(self, mode: str = "rb") -> IO[Any]:
        return open(self.path, mode) if self.is_local else self.fs.open(self.key, mode)

    def read_bytes(self) -> bytes:
        return self.path.read_bytes() if self.is_local else self.fs.cat_file(self.key)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    # -- writing -------------------------------------------------------------------------------
    def mkdir(self) -> None:
        """The folder and its parents; nothing to do on an object store."""
        if self.is_local:
            self.path.mkdir(parents=True, exist_ok=True)

    def write_bytes(self, data: bytes) -> None:
        """The whole file at once: one PUT on an object store (atomic), a plain write locally."""
        if self.is_local:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(data)
        else:
            self.fs.pipe_file(self.key, data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def upload(self, local_file: str) -> None:
        """Put a finished local file here whole (the object store's half of `atomic_path`)."""
        self.fs.put_file(local_file, self.key)

    def unlink(self, missing_ok: bool = False) -> None:
        if self.is_local:
            self.path.unlink(missing_ok=missing_ok)
            return
        # S3 answers a DELETE of a missing key with success: ask first when that matters.
        if not missing_ok and not self.fs.isfile(self.key):
            raise FileNotFoundError(f"{self.url}: no such object")
        try:
            self.fs.rm_file(self.key)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def rmdir(self) -> None:
        """Remove an empty folder (OSError if it is not empty); an object store has none to remove."""
        if self.is_local:
            self.path.rmdir()


# ---------------------------------------------------------------------------------- Arrow
def _arrow_filesystem(location: Location) -> Optional[pafs.FileSystem]:
    """None for local paths (pyarrow's own, as before); the URL's fsspec filesystem otherwise,
    so Arrow reads with the same credentials and endpoint as everything else."""
    return None if location.is_local else pafs.PyFileSystem(pafs.FSSpecHandler(location.fs))


def read_parquet(where: "Location | Sequence[Location]", **kwargs: Any) -> pa.Table:
    """`pyarrow.parquet.read_table` of one location or several (all local, or all of one store)."""
    many = not isinstance(where, Location)
    locations = list(where) if many else [where]
    first = locations[0]
    paths = [str(loc) if loc.is_local else loc.key for loc in locations]
    return pq.read_table(paths if many else paths[0], filesystem=_arrow_filesystem(first), **kwargs)


def parquet_file(where: Location) -> pq.ParquetFile:
    """A Parquet file to read in batches."""
    if where.is_local:
        return pq.ParquetFile(str(where))
    return pq.ParquetFile(where.key, filesystem=_arrow_filesystem(where))


def arrow_ipc_reader(where: Location) -> pa.ipc.RecordBatchFileReader:
    """An Arrow IPC file: memory-mapped when local, read by ranges from an object store."""
    if where.is_local:
        return pa.ipc.open_file(pa.memory_map(str(where), "r"))
    return pa.ipc.open_file(pa.PythonFile(where.open("rb"), mode="r"))
