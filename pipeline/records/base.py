"""What every record is: a typed JSON file (``Record``) or JSONL row (``Row``) with its file name."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline import fsutil
from pipeline.errors import PipelineError


class Model(BaseModel):
    """A part of a record: unknown keys are errors (a foreign file is refused, not half-read)."""

    model_config = ConfigDict(extra="forbid")


class Record(Model):
    """A JSON file in an artifact folder."""

    FILE: ClassVar[str]

    @classmethod
    def path(cls, folder: Path) -> Path:
        return Path(folder) / cls.FILE

    @classmethod
    def exists(cls, folder: Path) -> bool:
        return cls.path(folder).is_file()

    @classmethod
    def read(cls, folder: Path) -> Self:
        path = cls.path(folder)
        if not path.is_file():
            raise PipelineError(f"{path} is missing", fix="run `dvc repro` to produce it")
        return cls.parse_file_data(path, fsutil.read_json(path))

    @classmethod
    def parse_file_data(cls, path: Path, data: Any) -> Self:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            raise PipelineError(
                f"{path} is not a {cls.FILE} this version understands ({where}: {err['msg']})",
                fix="rebuild it with `dvc repro` (it was written by another version of the pipeline)",
            ) from None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)

    def write(self, folder: Path) -> Path:
        path = self.path(folder)
        fsutil.write_json(path, self.dump())
        return path


class Row(Model):
    """One line of a JSONL file."""

    FILE: ClassVar[str]

    @classmethod
    def read_all(cls, folder: Path, name: str | None = None) -> list[Self]:
        path = Path(folder) / (name or cls.FILE)
        if not path.is_file():
            raise PipelineError(f"{path} is missing", fix="run `dvc repro` to produce it")
        try:
            return [cls.model_validate(row) for row in fsutil.read_jsonl(path)]
        except ValidationError as exc:
            raise PipelineError(
                f"{path} has rows this version does not understand ({exc.errors()[0]['msg']})",
                fix="rebuild it with `dvc repro`",
            ) from None

    @classmethod
    def write_all(cls, folder: Path, rows: list[Self], name: str | None = None) -> Path:
        path = Path(folder) / (name or cls.FILE)
        fsutil.write_jsonl(path, (r.model_dump(mode="json", exclude_unset=True) for r in rows))
        return path


class FileEntry(Model):
    path: str
    size: int
    sha256: str


def file_table(root: Path, *, exclude: tuple[str, ...] = ()) -> list[FileEntry]:
    return [FileEntry(**row) for row in fsutil.file_table(root, exclude=exclude)]
