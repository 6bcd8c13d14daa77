#!/usr/bin/env python3
"""Runs .tflite models with TensorFlow Lite Micro's interpreter, one sample at a time.

Usage: tflm_run.py JOBS.json

JOBS.json is {"jobs": [{"tflite": PATH, "input": PATH, "output": PATH}, ...]}, paths relative
to the job file's directory unless absolute. For each job, "input" is an .npy of N rows (a 2-D
array, or 1-D for a single row) of the model input's type, int8 (or float32, for a model that
takes floats: QUANTIZE); every row is reshaped to the model's input shape, set as input 0 and run
with one invoke, and the N outputs (output 0, flattened) are written to "output" as an .npy of
shape (N, outputs) of the output's type, int8 or float32. An optional "arena_size" (bytes,
default 8 MiB) sizes TFLM's tensor arena.

Exits 0 when every job ran, 1 (with a message on stderr naming the job) on the first failure,
2 on a bad command line. Needs numpy and the pinned tflite-micro (tools/python/requirements.txt).
"""

import json
import sys
from pathlib import Path

import numpy as np

DEFAULT_ARENA = 8 << 20


class JobError(Exception):
    """A job that cannot run, with the reason."""


TYPES = (np.dtype(np.int8), np.dtype(np.float32))


def load_rows(path):
    rows = np.load(path, allow_pickle=False)
    if rows.dtype not in TYPES:
        raise JobError(f"{path}: dtype {rows.dtype}, expected int8 or float32")
    if rows.ndim == 1:
        rows = rows[np.newaxis, :]
    if rows.ndim != 2:
        raise JobError(f"{path}: {rows.ndim} dimensions, expected rows (2-D)")
    return rows


def run_job(job, base, runtime):
    for key in ("tflite", "input", "output"):
        if not isinstance(job.get(key), str):
            raise JobError(f'missing or non-string "{key}"')
    tflite, input_path, output_path = (base / job[key] for key in ("tflite", "input", "output"))
    arena = job.get("arena_size", DEFAULT_ARENA)
    if not isinstance(arena, int) or arena <= 0:
        raise JobError(f'"arena_size" must be a positive integer, got {arena!r}')
    model = tflite.read_bytes()
    rows = load_rows(input_path)
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena)
    details = interpreter.get_input_details(0)
    shape = tuple(int(d) for d in details["shape"])
    if np.dtype(details["dtype"]) != rows.dtype:
        raise JobError(f"{tflite}: the model's input is {np.dtype(details['dtype'])}, the rows are {rows.dtype}")
    if int(np.prod(shape)) != rows.shape[1]:
        raise JobError(f"{input_path}: rows of {rows.shape[1]} values, the model's input {shape} holds {int(np.prod(shape))}")
    outputs = []
    for i, row in enumerate(rows):
        interpreter.set_input(np.ascontiguousarray(row.reshape(shape)), 0)
        interpreter.invoke()
        out = np.asarray(interpreter.get_output(0))
        if out.dtype not in TYPES:
            raise JobError(f"{tflite}: row {i}: output dtype {out.dtype}, expected int8 or float32")
        outputs.append(out.reshape(-1).copy())
    if outputs:
        result = np.stack(outputs)
    else:
        out = interpreter.get_output_details(0)
        result = np.zeros((0, int(np.prod(out["shape"]))), dtype=np.dtype(out["dtype"]))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(output_path, result, allow_pickle=False)
    return result.shape


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    job_file = Path(argv[1])
    try:
        spec = json.loads(job_file.read_text())
    except (OSError, ValueError) as e:
        print(f"tflm_run: cannot read job file {job_file}: {e}", file=sys.stderr)
        return 1
    jobs = spec.get("jobs") if isinstance(spec, dict) else None
    if not isinstance(jobs, list):
        print(f'tflm_run: {job_file}: expected {{"jobs": [...]}}', file=sys.stderr)
        return 1
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as e:
        print(f"tflm_run: cannot import tflite_micro (pip install -r tools/python/requirements.txt): {e}", file=sys.stderr)
        return 1
    base = job_file.resolve().parent
    for n, job in enumerate(jobs):
        name = job.get("tflite", "?") if isinstance(job, dict) else "?"
        try:
            if not isinstance(job, dict):
                raise JobError("a job must be an object")
            run_job(job, base, runtime)
        except Exception as e:  # TFLM reports failures as RuntimeError; name the job either way.
            print(f"tflm_run: job {n} ({name}): {type(e).__name__}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
