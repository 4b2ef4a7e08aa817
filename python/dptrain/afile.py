"""Output files, as dptrain's C side writes them (src/core/afile.h): the
bytes go to a temp file in the same directory, which is flushed, fsynced and
renamed over the final name, then the directory is fsynced. A reader never
sees a half-written file under its final name. Also the SHA-256 of a file
(lineage in metadata)."""
import hashlib
import os


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def atomic_write(path, write_fn):
    """Calls write_fn(f) with a binary file open on a temp file next to path,
    then commits it to path. On any error the temp file is removed and an
    OSError naming path is raised."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, f".{os.path.basename(path)}.tmp.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OSError(e.errno, f"writing '{path}' failed: {e.strerror}") from e
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
