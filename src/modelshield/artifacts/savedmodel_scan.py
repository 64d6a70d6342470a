"""TensorFlow SavedModel (``saved_model.pb``): op names of every graph and function, no TensorFlow.

We walk the protobuf by hand (SavedModel.meta_graphs -> MetaGraphDef.graph_def -> GraphDef.node /
library.function[].node_def -> NodeDef.op) and report ops that run Python, touch files or open
network connections when the graph executes.
"""

from __future__ import annotations

from typing import BinaryIO

from modelshield.artifacts._io import Budget
from modelshield.artifacts.pickle_scan import RawFinding, _Malformed
from modelshield.artifacts.protobuf import Walker
from modelshield.findings import Severity

__all__ = ["DANGEROUS_OPS", "scan_savedmodel"]

DANGEROUS_OPS: dict[str, tuple[Severity, str]] = {
    **{op: (Severity.CRITICAL, "runs a Python function embedded in the process") for op in
       ("PyFunc", "PyFuncStateless", "EagerPyFunc")},
    **{op: (Severity.HIGH, "reads or writes files") for op in (
        "ReadFile", "WriteFile", "MatchingFiles", "MatchingFilesDataset", "ImmutableConst",
        "WholeFileReader", "WholeFileReaderV2", "TextLineReader", "TextLineReaderV2",
        "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "TFRecordReader", "TFRecordReaderV2",
        "LMDBReader", "TextLineDataset", "TFRecordDataset", "FixedLengthRecordDataset",
        "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset", "ExperimentalLMDBDataset",
        "SaveDataset", "SaveDatasetV2", "LoadDataset", "SnapshotDataset", "SnapshotDatasetV2",
        "CreateSummaryFileWriter", "WriteSummary", "WriteScalarSummary", "WriteAudioSummary",
        "WriteImageSummary", "WriteHistogramSummary", "WriteGraphSummary", "WriteRawProtoSummary",
        "LoadAndRemapMatrix", "PrintV2", "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3",
        "DebugNanCount", "DebugNumericSummary", "SqlDataset", "ExperimentalSqlDataset")},
    **{op: (Severity.HIGH, "opens network connections") for op in (
        "RpcCall", "RpcClient", "RpcServer", "RpcServerStart", "RpcServerRegister", "Rpc", "TryRpc",
        "DeleteRpcFutureResource", "RpcCheckStatus", "RpcGetValue", "CollectiveBcastSend",
        "CollectiveBcastRecv", "RecvTPUEmbeddingActivations", "_Send", "_Recv", "_HostSend", "_HostRecv")},
}


class _SM:
    def __init__(self, w: Walker) -> None:
        self.w = w
        self.ops: dict[str, int] = {}
        self.out: list[RawFinding] = []

    def saved_model(self, s: int, e: int) -> None:
        for f, wt, v, n in self.w.fields(s, e):
            if f == 2 and wt == 2:
                self.meta_graph(v, v + n)

    def meta_graph(self, s: int, e: int) -> None:
        for f, wt, v, n in self.w.fields(s, e):
            if f == 2 and wt == 2:
                self.graph_def(v, v + n)

    def graph_def(self, s: int, e: int) -> None:
        for f, wt, v, n in self.w.fields(s, e):
            if wt != 2:
                continue
            if f == 1:
                self.node(v, v + n)
            elif f == 2:
                for f2, wt2, v2, n2 in self.w.fields(v, v + n):
                    if f2 == 1 and wt2 == 2:
                        for f3, wt3, v3, n3 in self.w.fields(v2, v2 + n2):
                            if f3 == 3 and wt3 == 2:
                                self.node(v3, v3 + n3)

    def node(self, s: int, e: int) -> None:
        name = op = ""
        for f, wt, v, n in self.w.fields(s, e):
            if wt == 2 and f == 1:
                name = self.w.text(v, n, 4096)
            elif wt == 2 and f == 2:
                op = self.w.text(v, n, 4096)
        self.ops[op] = self.ops.get(op, 0) + 1
        if op in DANGEROUS_OPS and self.ops[op] == 1:
            sev, why = DANGEROUS_OPS[op]
            self.out.append(RawFinding(sev, "artifact.savedmodel.dangerous-op", f"graph uses op {op} (node {name!r})",
                                       s, f"The {op} op {why} when the graph runs.", {"op": op, "node": name}))


def scan_savedmodel(fh: BinaryIO, size: int | None, budget: Budget) -> list[RawFinding]:
    if size is None:
        raise _Malformed("SavedModel scan needs a known size")
    start = fh.tell()
    sm = _SM(Walker(fh, start + size, budget))
    sm.saved_model(start, start + size)
    if not sm.ops:
        raise _Malformed("saved_model.pb holds no graph nodes")
    return sm.out
