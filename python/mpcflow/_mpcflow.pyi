"""Type stubs of the native module (see python/src/lib.rs). Use the `mpcflow` package's API."""

from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

class Error(Exception): ...
class PipelineError(Error):
    file: Optional[str]
    line: Optional[int]
    column: Optional[int]
class InputError(Error): ...
class ProtocolError(Error): ...
class PeerError(Error): ...

class Prepared:
    @staticmethod
    def load(path: str, plugins: Sequence[str] = ...) -> "Prepared": ...
    @staticmethod
    def from_yaml(text: str, name: str, plugins: Sequence[str] = ...) -> "Prepared": ...
    def summary(self) -> str: ...
    def plan(
        self,
        protocol: Optional[str] = ...,
        dims: Dict[str, int] = ...,
        network: Optional[str] = ...,
        dot: bool = ...,
        all_under_protocol: bool = ...,
    ) -> str: ...
    def run(
        self,
        inputs: Dict[str, Tuple[str, List[int], bytes]],
        protocol: Optional[str] = ...,
        input_dirs: Sequence[str] = ...,
        timeout: float = ...,
        network: Optional[str] = ...,
        transport: str = ...,
        progress: Optional[Callable[[int, int], None]] = ...,
        all_under_protocol: bool = ...,
    ) -> List[Tuple[str, str, List[int], bytes, List[str]]]: ...

def import_model(
    model: str,
    owner: str,
    input_owner: str,
    out: str,
    reveal: str = ...,
    batch: int = ...,
    weights: Optional[str] = ...,
    protocol: str = ...,
    importer: str = ...,
    plugins: Sequence[str] = ...,
    calibrate: Union[str, Dict[str, str], None] = ...,
    margin: Optional[float] = ...,
) -> Tuple[str, str]: ...
def party(
    name: str,
    deployment: str,
    pipeline: str,
    inputs: Dict[str, Tuple[str, List[int], bytes]] = ...,
    protocol: Optional[str] = ...,
    input_dirs: Sequence[str] = ...,
    timeout: float = ...,
    connect_timeout: float = ...,
    insecure: bool = ...,
) -> List[Tuple[str, str, List[int], bytes, List[str]]]: ...
def dealer(
    deployment: str,
    pipeline: str,
    protocol: Optional[str] = ...,
    timeout: float = ...,
    connect_timeout: float = ...,
) -> Dict[str, int]: ...
def version() -> str: ...
