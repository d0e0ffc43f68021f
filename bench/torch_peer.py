# PyTorch peer rows for npm run bench:kernels: torch.mm GFLOP/s on one thread for the given products,
# and training steps/s of the reference MLP with torch.set_num_threads(1) and with torch's defaults.
# Reads a JSON job on stdin, prints one JSON object on stdout.
import json, os, sys, time
import torch

job = json.load(sys.stdin)
budget = job.get("seconds", 1.0)

def median_ms(fn, seconds):
    # Warm up for a while (allocator, first-touch, BLAS buffers), not a fixed count.
    end = time.perf_counter() + seconds / 2
    while time.perf_counter() < end:
        fn()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]

def openblas():
    # torch's BLAS: OpenBLAS keeps its own thread pool, which torch.set_num_threads does not size.
    import ctypes, glob
    for lib in glob.glob("/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas*.so*") + glob.glob("/usr/lib/x86_64-linux-gnu/libopenblas*.so*"):
        try:
            dll = ctypes.CDLL(lib)
            dll.openblas_get_corename.restype = ctypes.c_char_p
            return dll
        except (OSError, AttributeError):
            continue
    return None

BLAS = openblas()

def set_threads(n):
    torch.set_num_threads(n)
    if BLAS is not None:
        BLAS.openblas_set_num_threads(n)

default_threads = torch.get_num_threads()
torch.manual_seed(0)

def training(threads, batch, layers):
    set_threads(threads)
    mods = []
    for i in range(1, len(layers)):
        mods.append(torch.nn.Linear(layers[i - 1], layers[i]))
        if i < len(layers) - 1:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.rand(batch, layers[0])
    y = torch.randint(0, layers[-1], (batch,))
    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return batch * 1000 / median_ms(step, budget)

# Its defaults, one thread, and every core set explicitly (torch's default may count physical cores).
cores = os.cpu_count() or 1
training_rows = [
    {"threads": "defaults (%d)" % default_threads, "batch": b, "samplesPerSec": training(default_threads, b, job["layers"])} for b in job["batches"]
] + [{"threads": "1", "batch": b, "samplesPerSec": training(1, b, job["layers"])} for b in job["batches"]]
if cores != default_threads:
    training_rows += [{"threads": "set_num_threads(%d)" % cores, "batch": b, "samplesPerSec": training(cores, b, job["layers"])} for b in job["batches"]]


set_threads(1)
products = []
for s in job["products"]:
    m, n, k = s["m"], s["n"], s["k"]
    c = torch.rand(m, n)
    if s["product"] == "gemmNT":
        a, b = torch.rand(m, k), torch.rand(n, k).t()
    elif s["product"] == "gemmTN":
        a, b = torch.rand(k, m).t(), torch.rand(k, n)
    else:
        a, b = torch.rand(m, k), torch.rand(k, n)
    fn = (lambda: torch.addmm(c, a, b, out=c)) if s["accumulate"] else (lambda: torch.mm(a, b, out=c))
    products.append({"label": s["label"], "gflops": 2 * m * n * k / (median_ms(fn, budget) * 1e6)})

print(json.dumps({"torch": torch.__version__, "openblas": BLAS.openblas_get_corename().decode() if BLAS is not None else "not found", "defaultThreads": default_threads, "products": products, "training": training_rows}))
