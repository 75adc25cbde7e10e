"""Train the bundled digits CNNs and (re)write every generated file in examples/digits/.

    python examples/digits/train.py

Deterministic: fixed seeds, a fixed split, single-threaded deterministic kernels, and .npz files written
with a fixed zip timestamp, so two runs on the same software stack give byte-identical outputs.

Outputs (all overwritten):
    weights.pt, weights_wide.pt        state_dicts of DigitsCNN / DigitsCNNWide
    model.onnx, model_wide.onnx        ONNX (dynamo exporter, self-contained, dynamic batch "batch")
    model.pt2                          torch.export ExportedProgram of DigitsCNN (dynamic batch)
    model.torchscript.pt               torch.jit.trace of DigitsCNN
    calib.npz                          "input" float32 [256,1,8,8]  (calibration split, no labels)
    eval.npz                           "input" float32 [400,1,8,8], "labels" int64 (held-out eval split)
    train.npz                          "input" float32 [1141,1,8,8], "labels" int64 (train split)
"""

from __future__ import annotations

import io
import logging
import os
import random
import sys
import time
import warnings
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent

# Single thread, set before torch starts its thread pools.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

# Import the models under their package name (as `edgeml compile examples.digits.digits_cnn:build` does),
# so that names recorded in the exported files do not depend on how this script was started.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from examples.digits.digits_cnn import (  # noqa: E402
    EXAMPLE_BATCH,
    DigitsCNN,
    DigitsCNNWide,
    count_parameters,
)

SEED = 0
N_EVAL = 400
N_CALIB = 256
EPOCHS = 40
EPOCHS_WIDE = 20
BATCH_SIZE = 32
LR = 3e-3
OPSET = 18
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def quiet_exporters() -> None:
    """Silence known, harmless noise from the torch 2.13 exporters."""
    # "torchvision is not installed. Skipping torchvision::nms" (x4 per export)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    # ExportedProgram.run_decompositions deep-copies the module call graph, which trips typing_extensions'
    # "`isinstance(treespec, LeafSpec)` is deprecated" FutureWarning inside torch itself.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning)


def seed_everything(seed: int = SEED) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    try:
        torch.use_deterministic_algorithms(True)
    except Exception as exc:  # pragma: no cover - depends on the build
        print(f"note: torch.use_deterministic_algorithms(True) failed: {exc}")


def load_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fixed split of sklearn's 1797 digits: eval 400 / calib 256 / train 1141."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    order = np.random.RandomState(SEED).permutation(len(x))  # RandomState: stable across NumPy versions
    idx_eval = np.sort(order[:N_EVAL])
    idx_calib = np.sort(order[N_EVAL : N_EVAL + N_CALIB])
    idx_train = np.sort(order[N_EVAL + N_CALIB :])
    return {
        "eval": (np.ascontiguousarray(x[idx_eval]), y[idx_eval]),
        "calib": (np.ascontiguousarray(x[idx_calib]), y[idx_calib]),
        "train": (np.ascontiguousarray(x[idx_train]), y[idx_train]),
    }


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez (uncompressed, same layout) with a fixed zip timestamp, so the bytes are reproducible."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, seed: int, epochs: int = EPOCHS) -> nn.Module:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), BATCH_SIZE):
            b = perm[i : i + BATCH_SIZE]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[b]), yt[b])
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((pred == y).mean())


def dynamic_batch() -> tuple[dict[int, object]]:
    return ({0: torch.export.Dim("batch")},)


def export_onnx(model: nn.Module, x: torch.Tensor, path: Path) -> str:
    """Export with the dynamo exporter (fallback: TorchScript exporter). Returns which one was used."""
    for stale in (path, path.with_name(path.name + ".data")):
        stale.unlink(missing_ok=True)
    try:
        torch.onnx.export(
            model,
            (x,),
            str(path),
            dynamo=True,
            external_data=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=dynamic_batch(),
            opset_version=OPSET,
            verbose=False,
        )
        used = "dynamo"
    except Exception as exc:
        print(f"WARNING: dynamo ONNX export failed ({type(exc).__name__}: {exc}); using dynamo=False")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (x,),
                str(path),
                dynamo=False,
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=OPSET,
            )
        used = "torchscript (dynamo=False)"
    strip_onnx_stack_traces(path)
    check_onnx(model, path)
    return used


# The exporters record Python stack traces with absolute paths (this checkout, the Python install) in the
# files they write; strip them so the outputs do not depend on where the repository and Python live.
STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"


def strip_onnx_stack_traces(path: Path) -> None:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    graphs = [proto.graph] + [f for f in proto.functions]
    for g in graphs:
        for node in g.node:
            keep = [p for p in node.metadata_props if p.key != STACK_TRACE_KEY]
            del node.metadata_props[:]
            node.metadata_props.extend(keep)
    onnx.save(proto, str(path))


def strip_fx_stack_traces(ep: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    for module in ep.graph_module.modules():
        if isinstance(module, torch.fx.GraphModule):
            for node in module.graph.nodes:
                node.meta.pop("stack_trace", None)
    return ep


def save_torchscript_without_debug_info(module: torch.jit.ScriptModule, path: Path) -> None:
    """torch.jit.save, minus the *.debug_pkl records (source ranges with absolute file paths)."""
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    buf.seek(0)
    reader = torch._C.PyTorchFileReader(buf)
    path.unlink(missing_ok=True)
    # the archive folder inside the zip is named after the file, as torch.jit.save does
    writer = torch._C.PyTorchFileWriter(str(path))
    for name in reader.get_all_records():
        # the writer adds version, byteorder and serialization_id itself
        if name.endswith(".debug_pkl") or name in ("version", "byteorder", ".data/serialization_id"):
            continue
        data = reader.get_record(name)
        writer.write_record(name, data, len(data))
    writer.write_end_of_file()
    del writer


def check_onnx(model: nn.Module, path: Path) -> None:
    import onnx
    import onnxruntime as ort

    extra = sorted(p.name for p in path.parent.glob(path.name + "*") if p != path)
    assert not extra, f"external data written beside {path.name}: {extra}"
    proto = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(proto, full_check=True)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer), (
        "initializers stored externally"
    )
    opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    assert opset >= 17, f"opset {opset} < 17"

    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    ins = {vi.name: dims(vi) for vi in proto.graph.input}
    outs = {vi.name: dims(vi) for vi in proto.graph.output}
    assert ins == {"input": ["batch", 1, 8, 8]}, f"unexpected graph inputs {ins}"
    assert outs == {"logits": ["batch", 10]}, f"unexpected graph outputs {outs}"

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    for n in (1, 3, 7):
        x = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(n))
        (got,) = sess.run(["logits"], {"input": x.numpy()})
        with torch.no_grad():
            ref = model(x).numpy()
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)


def check_no_local_paths() -> None:
    needles = [os.fsencode(str(REPO_ROOT)), os.fsencode(sys.prefix), os.fsencode(str(Path.home()))]
    for p in HERE.iterdir():
        if p.suffix in (".pt", ".pt2", ".onnx"):
            data = p.read_bytes()
            found = [n.decode() for n in needles if len(n) > 1 and n in data]
            assert not found, f"{p.name} contains local paths {found}"


def main() -> None:
    t0 = time.perf_counter()
    quiet_exporters()
    seed_everything()
    splits = load_splits()
    x_train, y_train = splits["train"]
    x_eval, y_eval = splits["eval"]
    x_calib, _ = splits["calib"]
    print(f"split: train {len(x_train)}, calib {len(x_calib)}, eval {len(x_eval)}")

    save_npz(HERE / "train.npz", input=x_train, labels=y_train)
    save_npz(HERE / "calib.npz", input=x_calib)
    save_npz(HERE / "eval.npz", input=x_eval, labels=y_eval)

    t = time.perf_counter()
    torch.manual_seed(SEED)
    small = train(DigitsCNN(), x_train, y_train, seed=SEED)
    t_small = time.perf_counter() - t
    t = time.perf_counter()
    torch.manual_seed(SEED + 1)
    wide = train(DigitsCNNWide(), x_train, y_train, seed=SEED + 1, epochs=EPOCHS_WIDE)
    t_wide = time.perf_counter() - t

    for name, model in (("DigitsCNN", small), ("DigitsCNNWide", wide)):
        print(
            f"{name}: {count_parameters(model)} parameters, "
            f"train acc {accuracy(model, x_train, y_train):.4f}, "
            f"eval acc {accuracy(model, x_eval, y_eval):.4f}"
        )

    torch.save(small.state_dict(), HERE / "weights.pt")
    torch.save(wide.state_dict(), HERE / "weights_wide.pt")

    x = torch.from_numpy(x_eval[:EXAMPLE_BATCH].copy())
    used = export_onnx(small, x, HERE / "model.onnx")
    used_wide = export_onnx(wide, x, HERE / "model_wide.onnx")
    print(f"ONNX exporter: model.onnx {used}, model_wide.onnx {used_wide}")

    ep = strip_fx_stack_traces(torch.export.export(small, (x,), dynamic_shapes=dynamic_batch()))
    torch.export.save(ep, HERE / "model.pt2")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated; the traced file is still shipped
        traced = torch.jit.trace(small, x)
    save_torchscript_without_debug_info(traced, HERE / "model.torchscript.pt")

    check_no_local_paths()

    print(f"training {t_small:.1f} s + {t_wide:.1f} s (wide), total {time.perf_counter() - t0:.1f} s")
    for p in sorted(HERE.iterdir()):
        if p.is_file() and p.suffix in (".pt", ".pt2", ".onnx", ".npz", ".data"):
            print(f"  {p.name:24s} {p.stat().st_size:>9d} bytes")


if __name__ == "__main__":
    main()
