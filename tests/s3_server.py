"""A real S3 server on loopback for the object-storage tests: moto in server mode, reached over
HTTP by s3fs exactly as a remote bucket would be (no client is mocked).

`local_s3()` starts it, points the standard variables at it (AWS_ENDPOINT_URL and test
credentials, which Ray workers started afterwards inherit), creates a bucket, and undoes it all.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

BUCKET = "scalelab-test"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}".rstrip("/")

    def upload(self, local: Path, key: str) -> str:
        """Copy a local file into the bucket; returns its URL."""
        import fsspec

        fsspec.filesystem("s3").put_file(str(local), f"{self.bucket}/{key}")
        return self.url(key)


def _forget_s3_clients() -> None:
    """fsspec keeps one S3 filesystem per process, bound to the endpoint it first saw."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@contextmanager
def local_s3() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    # moto keeps its buckets in process memory, shared by every server started in this process:
    # start each from empty.
    with urllib.request.urlopen(urllib.request.Request(f"{env['AWS_ENDPOINT_URL']}/moto-api/reset", method="POST")):
        pass
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    _forget_s3_clients()
    try:
        import fsspec

        fsspec.filesystem("s3").mkdir(BUCKET)
        yield S3Server(endpoint=env["AWS_ENDPOINT_URL"], bucket=BUCKET)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _forget_s3_clients()
        server.stop()
