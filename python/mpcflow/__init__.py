"""mpcflow from Python: run secure multi-party computation pipelines on NumPy data.

Parties that do not trust each other compute on their joint private data and learn only the
outputs revealed to them. A pipeline (a YAML file, see the project's README) names the parties,
their private inputs, the operators and who learns what; this package loads it, shows its plan
(rounds, bytes, dealer material) and runs it with every party and the dealer in this process::

    import numpy as np
    import mpcflow

    out = mpcflow.run("graphs/hospital_stats.yaml",
                      {"north_bp": np.array([120.0, 150.0]), "south_bp": np.array([135.0])})
    print(out["mean_bp"], out["n_high"])

Inputs are NumPy arrays, Python numbers or (nested) lists: float arrays go in as real numbers
(encoded as the declaration says: fixed point, whole numbers for ``int``, 0/1 for ``bit``) and
integer or bool arrays exactly. Outputs come back as NumPy arrays: fixed point as float64, int as
int64, bit as uint8, a scalar as a 0-d array.

Errors are exceptions: :class:`Error`, and below it :class:`PipelineError` (with ``file``,
``line`` and ``column``), :class:`InputError`, :class:`ProtocolError` and :class:`PeerError`.
A run releases the GIL; Ctrl-C stops it and raises ``KeyboardInterrupt``; a run longer than a
second shows a progress bar when tqdm is installed and output goes to a terminal or a notebook.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _mpcflow
from ._mpcflow import Error, InputError, PeerError, PipelineError, ProtocolError

__all__ = [
    "Error",
    "InputError",
    "PeerError",
    "Pipeline",
    "PipelineError",
    "Plan",
    "PlanNode",
    "ProtocolError",
    "dealer",
    "import_onnx",
    "owner",
    "party",
    "run",
    "secure_inference",
    "SecureModel",
]

__version__: str = _mpcflow.version()

PathLike = Union[str, "os.PathLike[str]"]
Inputs = Mapping[str, Any]


@dataclass(frozen=True)
class PlanNode:
    """One node of a plan: what it costs under the plan's protocol."""

    name: str
    """The tensor it computes."""
    op: str
    """Its op (after the protocol's lowering)."""
    shape: Tuple[int, ...]
    """Its output's shape."""
    rounds: int
    """Online communication rounds."""
    online_bytes: Tuple[int, ...]
    """Bytes each party sends online."""
    dealer_bytes: Tuple[int, ...]
    """Bytes of dealer material each party receives."""
    form: str
    """How the protocol computes it (widths, tables, forms), as ``mpcflow plan`` shows."""
    origin: Optional[str]
    """The pipeline node it was lowered from, where it differs."""
    local: Optional[str] = None
    """The party that computes it in the clear from its own data, or ``None`` (under the protocol)."""


class Plan:
    """What a pipeline costs under a protocol: rounds, online bytes and dealer material."""

    def __init__(self, doc: Dict[str, Any], dot: Callable[[], str]) -> None:
        self._doc = doc
        self._dot = dot
        self.name: str = doc["name"]
        self.protocol: str = doc["protocol"]
        self.parties: List[str] = list(doc["parties"])
        self.fingerprint: str = doc["fingerprint"]
        self.network: str = doc["network"]
        total = doc["total"]
        self.rounds: int = total["critical_rounds"]
        """Rounds on the longest dependency path: the online latency in round trips."""
        self.online_bytes: int = sum(total["online_bytes"])
        """Bytes all parties send online."""
        self.dealer_bytes: int = sum(total["dealer_bytes"])
        """Bytes of dealer material all parties receive."""
        self.online_bytes_per_party: Tuple[int, ...] = tuple(total["online_bytes"])
        self.dealer_bytes_per_party: Tuple[int, ...] = tuple(total["dealer_bytes"])
        self.nodes: List[PlanNode] = [
            PlanNode(
                name=n["name"],
                op=n["op"],
                shape=tuple(n["shape"]),
                rounds=n["rounds"],
                online_bytes=tuple(n["online_bytes"]),
                dealer_bytes=tuple(n["dealer_bytes"]),
                form=n["form"],
                origin=n.get("origin"),
                local=n.get("local"),
            )
            for n in doc["nodes"]
        ]

    def to_dot(self) -> str:
        """The plan as a Graphviz graph (render with ``dot -Tsvg``)."""
        return self._dot()

    def to_dict(self) -> Dict[str, Any]:
        """The plan as ``mpcflow plan --json`` prints it."""
        return json.loads(json.dumps(self._doc))

    def __repr__(self) -> str:
        return (
            f"Plan({self.name!r} under {self.protocol}: {len(self.nodes)} nodes, {self.rounds} rounds, "
            f"{self.online_bytes} B online, {self.dealer_bytes} B of dealer material)"
        )


class Pipeline:
    """A pipeline file, read with its plugins loaded and its models imported."""

    def __init__(self, prepared: "_mpcflow.Prepared", input_dirs: Sequence[str] = ()) -> None:
        self._prepared = prepared
        self.input_dirs: List[str] = list(input_dirs)
        """Directories of ``NAME.npy`` files a run reads the inputs not given from (an imported
        model's weights)."""
        summary = json.loads(prepared.summary())
        self.name: str = summary["name"]
        self.parties: List[str] = list(summary["parties"])
        self.protocol: str = summary["protocol"]
        self.inputs: List[Dict[str, Any]] = summary["inputs"]
        """Private inputs: name, owner, dtype, shape (sizes or names), and whether a model file gives it."""
        self.outputs: List[Dict[str, Any]] = summary["outputs"]
        """Outputs: name and the parties they are revealed to."""
        self.nodes: Dict[str, Dict[str, Any]] = {n["name"]: n for n in summary["nodes"]}
        """Nodes by name, as the file declares them (models spliced in): op, inputs, attrs."""

    @classmethod
    def load(cls, path: PathLike, *, plugins: Sequence[PathLike] = ()) -> "Pipeline":
        """Reads a pipeline file (its ``plugins:`` and ``models:`` relative to it)."""
        return cls(_mpcflow.Prepared.load(os.fspath(path), [os.fspath(p) for p in plugins]))

    @classmethod
    def from_yaml(cls, text: str, *, name: str = "pipeline.yaml", plugins: Sequence[PathLike] = ()) -> "Pipeline":
        """Parses pipeline YAML; ``name`` stands for the file in error messages."""
        return cls(_mpcflow.Prepared.from_yaml(text, name, [os.fspath(p) for p in plugins]))

    def check(self, *, protocol: Optional[str] = None) -> "Pipeline":
        """Validates the pipeline by planning it (sample sizes for symbolic dimensions); raises
        :class:`PipelineError` naming every problem with its place in the file."""
        self.plan(protocol=protocol)
        return self

    def plan(
        self,
        dims: Optional[Mapping[str, int]] = None,
        *,
        protocol: Optional[str] = None,
        network: Optional[str] = None,
        all_under_protocol: bool = False,
    ) -> Plan:
        """The plan: per node and in total, rounds, online bytes and dealer material.

        ``dims`` gives symbolic dimensions their sizes (others get sample sizes); ``protocol``
        replaces the file's; ``network`` is the profile the plan assumes (local, lan, wan).
        A party computes what it can from its own data alone in the clear (a node's ``form``
        then reads ``in the clear on PARTY``); ``all_under_protocol`` keeps every op under the
        protocol, as ``--all-under-protocol`` does."""
        d = dict(dims or {})
        doc = json.loads(self._prepared.plan(protocol, d, network, False, all_under_protocol=all_under_protocol))
        # The Graphviz text is planned again only when asked for.
        return Plan(doc, lambda: self._prepared.plan(protocol, d, network, True, all_under_protocol=all_under_protocol))

    def run(
        self,
        inputs: Inputs,
        *,
        protocol: Optional[str] = None,
        input_dir: Union[PathLike, Sequence[PathLike], None] = None,
        timeout: Optional[float] = None,
        network: Optional[str] = None,
        transport: str = "mem",
        progress: Union[bool, Callable[[int, int], None], None] = None,
        all_under_protocol: bool = False,
    ) -> Dict[str, np.ndarray]:
        """Runs every party and the dealer in this process and returns the revealed outputs.

        ``inputs`` maps input names to arrays, numbers or lists; ``input_dir`` (one directory or
        several) supplies every input not given as ``NAME.npy``; ``timeout`` bounds every wait
        (seconds, 60 by default); ``transport`` is ``mem`` or ``tcp`` (TLS over loopback);
        ``progress`` is ``True``/``False`` to force the bar on or off, or a callback
        ``(nodes_done, nodes_total)``; ``all_under_protocol`` as for :meth:`plan`."""
        encoded = {name: _encode(name, value) for name, value in inputs.items()}
        dirs = _paths(input_dir) + self.input_dirs
        callback, close = _progress(progress)
        try:
            out = self._prepared.run(
                encoded,
                protocol,
                dirs,
                60.0 if timeout is None else float(timeout),
                network,
                transport,
                callback,
                all_under_protocol=all_under_protocol,
            )
        finally:
            close()
        return {name: _decode(dtype, shape, data) for name, dtype, shape, data, _ in out}

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, parties={self.parties}, protocol={self.protocol!r})"


def run(
    pipeline: Union[PathLike, Pipeline],
    inputs: Inputs,
    *,
    protocol: Optional[str] = None,
    input_dir: Union[PathLike, Sequence[PathLike], None] = None,
    timeout: Optional[float] = None,
    progress: Union[bool, Callable[[int, int], None], None] = None,
    all_under_protocol: bool = False,
) -> Dict[str, np.ndarray]:
    """Runs ``pipeline`` (a path or a :class:`Pipeline`) with every party and the dealer in this
    process; see :meth:`Pipeline.run`."""
    p = pipeline if isinstance(pipeline, Pipeline) else Pipeline.load(pipeline)
    return p.run(
        inputs,
        protocol=protocol,
        input_dir=input_dir,
        timeout=timeout,
        progress=progress,
        all_under_protocol=all_under_protocol,
    )


def _calibration_samples(calibrate):
    """``calibrate=`` as the native module takes it: a path, or a dict of paths by input name."""
    if calibrate is None:
        return None
    if isinstance(calibrate, Mapping):
        if not calibrate:
            raise ValueError("calibrate={}: give a sample per model input, or leave calibrate out")
        return {str(k): os.fspath(v) for k, v in calibrate.items()}
    return os.fspath(calibrate)


def import_onnx(
    model_path: PathLike,
    *,
    owner: str,
    input_owner: str,
    out: PathLike,
    reveal: str = "class",
    batch: Optional[int] = None,
    weights: Optional[PathLike] = None,
    protocol: str = "fss2pc",
    calibrate: Union[PathLike, Mapping[str, PathLike], None] = None,
    margin: Optional[float] = None,
) -> Pipeline:
    """Imports an ONNX model as ``mpcflow import`` does and returns the pipeline it wrote.

    The model's input belongs to ``input_owner``, its weights (written as ``NAME.npy`` files into
    ``weights``, by default ``STEM.weights/`` beside ``out``) to ``owner``. ``reveal`` is
    ``class`` (the predicted class, to the input owner), ``logits`` (the model's output, to the
    input owner) or ``accuracy`` (how many predictions match the input owner's ``labels``, to
    both). ``batch`` sizes a symbolic batch dimension (1 by default); ``calibrate`` names a
    sample (.npy) whose plaintext run records each node's range, widened by ``margin`` (a model
    with several inputs takes one sample per input: ``{"input_ids": "ids.npy", ...}``). The
    returned pipeline reads the weights from their directory when it runs."""
    path, weights_dir = _mpcflow.import_model(
        os.fspath(model_path),
        owner,
        input_owner,
        os.fspath(out),
        reveal=reveal,
        batch=1 if batch is None else int(batch),
        weights=None if weights is None else os.fspath(weights),
        protocol=protocol,
        calibrate=_calibration_samples(calibrate),
        margin=margin,
    )
    p = Pipeline.load(path)
    p.input_dirs.append(os.fspath(weights_dir))
    return p


class SecureModel:
    """A torch module exported and imported for secure inference: call it on an input and the
    model owner's weights and the input owner's data meet only under the protocol. Made by
    :func:`secure_inference`."""

    def __init__(self, pipeline: Pipeline, input_name: str, output_name: str, workdir: Any) -> None:
        self.pipeline = pipeline
        """The imported pipeline (its weights in a temporary directory this object keeps)."""
        self.input_name = input_name
        self.output_name = output_name
        self._workdir = workdir

    def __call__(self, x: Any, *, protocol: Optional[str] = None, timeout: Optional[float] = None) -> np.ndarray:
        """The revealed result on ``x`` (a NumPy array or a torch tensor of the example's shape)."""
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        return self.pipeline.run({self.input_name: np.asarray(x, dtype=np.float64)}, protocol=protocol, timeout=timeout)[
            self.output_name
        ]

    def plan(self) -> Plan:
        """What one call costs: rounds, online bytes and dealer material."""
        return self.pipeline.plan()

    def __repr__(self) -> str:
        return f"SecureModel({self.pipeline.name!r}, {self.input_name} -> {self.output_name})"


def secure_inference(
    module: Any,
    example_input: Any,
    *,
    owner: str = "model_owner",
    input_owner: str = "data_owner",
    reveal: str = "logits",
    protocol: str = "fss2pc",
) -> SecureModel:
    """A torch ``nn.Module`` made ready for secure inference: exported through torch's ONNX
    exporter into a temporary directory, imported (its weights the ``owner``'s private inputs,
    the input the ``input_owner``'s), and returned as a callable that takes an input of the
    example's shape and returns the revealed result as NumPy (``reveal``: ``logits`` or
    ``class``). Needs torch and onnx (``pip install torch onnx``)."""
    import tempfile

    try:
        import torch
    except ImportError:
        raise Error("secure_inference needs torch: pip install torch onnx") from None
    x = example_input if torch.is_tensor(example_input) else torch.as_tensor(np.asarray(example_input), dtype=torch.float32)
    workdir = tempfile.TemporaryDirectory(prefix="mpcflow-")
    path = os.path.join(workdir.name, "model.onnx")
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            kwargs: Dict[str, Any] = {"input_names": ["input"], "output_names": ["output"], "opset_version": 17}
            try:
                # The TorchScript exporter: needs onnx but not onnxscript, and exports what the
                # importer reads.
                torch.onnx.export(module, (x,), path, dynamo=False, **kwargs)
            except TypeError:
                torch.onnx.export(module, (x,), path, **kwargs)
    finally:
        module.train(was_training)
    batch = int(x.shape[0]) if x.dim() > 0 else 1
    pipeline = import_onnx(
        path,
        owner=owner,
        input_owner=input_owner,
        out=os.path.join(workdir.name, "model.yaml"),
        reveal=reveal,
        batch=batch,
        protocol=protocol,
    )
    input_name = next(i["name"] for i in pipeline.inputs if i["owner"] == input_owner)
    return SecureModel(pipeline, input_name, pipeline.outputs[0]["name"], workdir)


def party(
    name: str,
    deployment: PathLike,
    pipeline: PathLike,
    inputs: Optional[Inputs] = None,
    *,
    protocol: Optional[str] = None,
    input_dir: Union[PathLike, Sequence[PathLike], None] = None,
    timeout: Optional[float] = None,
    connect_timeout: Optional[float] = None,
    insecure: bool = False,
) -> Dict[str, np.ndarray]:
    """Runs this process as party ``name`` of a deployment, as ``mpcflow party`` does: it brings
    only its own inputs, connects to the other parties and the dealer named in the
    ``deployment`` file (see ``mpcflow certs new``), and returns the outputs revealed to it.
    ``timeout`` bounds every wait and ``connect_timeout`` the wait for the others (60 s each by
    default); ``insecure`` allows ``ref``, which sends inputs in the clear (tests only)."""
    return _endpoint(_mpcflow.party, name, deployment, pipeline, inputs, protocol, input_dir, timeout, connect_timeout, insecure)


def owner(
    name: str,
    deployment: PathLike,
    pipeline: PathLike,
    inputs: Optional[Inputs] = None,
    *,
    protocol: Optional[str] = None,
    input_dir: Union[PathLike, Sequence[PathLike], None] = None,
    timeout: Optional[float] = None,
    connect_timeout: Optional[float] = None,
    insecure: bool = False,
) -> Dict[str, np.ndarray]:
    """Runs this process as data owner ``name`` of a deployment, as ``mpcflow owner`` does: it
    splits its own inputs into random shares, one for each computing party named in the
    ``deployment`` file (never the dealer or another owner), and returns the outputs revealed
    to it. Owners are listed under ``owners:`` in the pipeline; the other arguments are those of
    :func:`party`."""
    return _endpoint(_mpcflow.owner, name, deployment, pipeline, inputs, protocol, input_dir, timeout, connect_timeout, insecure)


def _endpoint(run: Any, name: str, deployment: PathLike, pipeline: PathLike, inputs: Optional[Inputs],
              protocol: Optional[str], input_dir: Union[PathLike, Sequence[PathLike], None],
              timeout: Optional[float], connect_timeout: Optional[float], insecure: bool) -> Dict[str, np.ndarray]:
    """A party or owner process (``run`` is the native module's ``party`` or ``owner``)."""
    encoded = {k: _encode(k, v) for k, v in (inputs or {}).items()}
    out = run(
        name,
        os.fspath(deployment),
        os.fspath(pipeline),
        encoded,
        protocol=protocol,
        input_dirs=_paths(input_dir),
        timeout=60.0 if timeout is None else float(timeout),
        connect_timeout=60.0 if connect_timeout is None else float(connect_timeout),
        insecure=insecure,
    )
    return {n: _decode(dtype, shape, data) for n, dtype, shape, data, _ in out}


def dealer(
    deployment: PathLike,
    pipeline: PathLike,
    *,
    protocol: Optional[str] = None,
    timeout: Optional[float] = None,
    connect_timeout: Optional[float] = None,
) -> Dict[str, int]:
    """Runs this process as the dealer of a deployment, as ``mpcflow dealer`` does; returns the
    bytes of material it sent to each party."""
    return dict(
        _mpcflow.dealer(
            os.fspath(deployment),
            os.fspath(pipeline),
            protocol=protocol,
            timeout=60.0 if timeout is None else float(timeout),
            connect_timeout=60.0 if connect_timeout is None else float(connect_timeout),
        )
    )


def _encode(name: str, value: Any) -> Tuple[str, List[int], bytes]:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise InputError(f"input `{name}`: cannot read it as an array of numbers: {e}") from None
    kind = arr.dtype.kind
    if kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise InputError(f"input `{name}`: {int(arr.max())} does not fit a 64-bit signed integer")
    if kind in "iub":
        return ("int", list(arr.shape), np.ascontiguousarray(arr, dtype="<i8").tobytes())
    if kind == "f":
        return ("real", list(arr.shape), np.ascontiguousarray(arr, dtype="<f8").tobytes())
    raise InputError(f"input `{name}`: expected numbers, found an array of {arr.dtype}")


def _decode(dtype: str, shape: Sequence[int], data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(tuple(shape)).copy()


def _paths(p: Union[PathLike, Sequence[PathLike], None]) -> List[str]:
    if p is None:
        return []
    if isinstance(p, (str, os.PathLike)):
        return [os.fspath(p)]
    return [os.fspath(x) for x in p]


def _progress(progress: Union[bool, Callable[[int, int], None], None]) -> Tuple[Optional[Callable[[int, int], None]], Callable[[], None]]:
    """The callback a run reports to, and what closes it afterwards."""
    if callable(progress):
        return progress, lambda: None
    interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
    if progress is False or (progress is None and not interactive):
        return None, lambda: None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None, lambda: None
    bar: List[Any] = []

    def update(done: int, total: int) -> None:
        if not bar:
            # Shown only once the run has taken a second.
            bar.append(tqdm(total=total, unit="node", delay=1.0, leave=False))
        bar[0].n = done
        bar[0].refresh()

    def close() -> None:
        if bar:
            bar[0].close()

    return update, close
