// The library's public option and result types, written out by hand so that the published
// declarations read like documentation and reach no internal module (arena, threads, sockets).
// They cannot drift silently: the internal records are handed to callbacks typed with these, and a
// test checks ConfigInput against the config schema's input type.

import type { Activation, InitName, LossName, OutputName } from '../../core/spec.js';
import type { SyntheticName } from '../../core/data/synthetic.js';
import type { ArrayData, ArrayDataSplit } from '../../core/data/arrays.js';
import type { ModelDescription } from '../../core/io/model-file.js';

export type { Activation, ArrayData, ArrayDataSplit, InitName, LossName, ModelDescription, OutputName, SyntheticName };

/** Kernel backend: `native` (AVX2/AVX-512 through Node-API), `wasm` (WebAssembly SIMD), `ts` (plain TypeScript), `auto` (the fastest available). */
export type KernelChoice = 'auto' | 'native' | 'wasm' | 'ts';

/** Loss and accuracy on a data set (as `dptrain eval` prints them). */
export interface EvalResult {
  readonly loss: number;
  /** null for regression data. */
  readonly accuracy: number | null;
  /** confusion[actual][predicted], for classification data. */
  readonly confusion: number[][] | null;
  readonly n: number;
}

/** One optimizer step, as --metrics sees it. */
export interface StepRecord {
  readonly step: number;
  readonly epoch: number;
  readonly batch: number;
  readonly batches: number;
  readonly rows: number;
  /** The epoch's mean train loss so far. */
  readonly loss: number;
  readonly stepMs: number;
  /** Per shard, in shard order: who computed it and how long its forward + backward took. */
  readonly shards: readonly { readonly by: string; readonly rows: number; readonly computeMs: number }[];
  /** Reduction of the gradient slots plus the optimizer update. */
  readonly updateMs: number;
  /** Rows given to each member (the local pool, remote nodes) this step. */
  readonly plan: readonly { readonly member: string; readonly rows: number }[];
  /** Connected remote nodes after the step (empty without listen). */
  readonly nodes: readonly {
    readonly id: string;
    readonly address: string;
    readonly threads: number;
    readonly bytesSent: number;
    readonly bytesReceived: number;
    readonly lastSeenMsAgo: number;
  }[];
}

/** One epoch, after its evaluation (test.n is 0 when there is no test split). */
export interface EpochRecord {
  readonly epoch: number;
  readonly step: number;
  readonly trainLoss: number;
  readonly test: EvalResult;
  readonly samplesPerSec: number;
  readonly seconds: number;
  /** True for the last epoch of the run. */
  readonly stopping: boolean;
}

export type StopReason = 'epochs' | 'target-loss' | 'target-accuracy' | 'interrupted' | 'max-steps';

/** A data source, as `data` in a config file. Relative paths are relative to `baseDir`. */
export type DataSource =
  | { source: 'mnist'; train?: number; test?: number }
  | { source: 'idx'; images: string; labels: string; testImages?: string; testLabels?: string; train?: number; test?: number }
  | { source: 'csv'; path: string; target: string | string[]; testPath?: string; test?: number }
  | { source: 'synthetic'; name: SyntheticName; n?: number; test?: number };

export type OptimizerInput =
  | { name: 'sgd'; lr: number; momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number }
  | { name: 'adam'; lr: number; betas?: [number, number]; eps?: number; weightDecay?: number };

/** The same object as a config file (see the README's Config section); defaults as there. */
export interface ConfigInput {
  model: { layers: number[]; hidden?: Activation; output?: OutputName; bias?: boolean; init?: InitName };
  loss: LossName;
  optimizer: OptimizerInput;
  /** Required unless `TrainOptions.data` gives the data. */
  data?: DataSource;
  training?: { epochs?: number; batchSize?: number; shuffle?: boolean; seed?: number; targetLoss?: number; targetAccuracy?: number };
}

/** Accepting remote worker nodes (`dptrain worker --connect ws://HOST:PORT`) into the run. */
export interface ListenOptions {
  /** Default 127.0.0.1; any other address needs a token. */
  readonly host?: string;
  /** 0 picks a free port (see onListening). */
  readonly port: number;
  /** The shared secret nodes must prove. */
  readonly token?: string;
  /** PEM files to serve wss:// with. */
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Nodes accepted at once (default 8). */
  readonly maxNodes?: number;
  /** Nodes to wait for before the first step (default 0). */
  readonly minNodes?: number;
  /** Milliseconds a node may take for one step before it is dropped (default 30000). */
  readonly stepDeadlineMs?: number;
  /** Milliseconds between heartbeats; three missed drop a node (default 1000). */
  readonly heartbeatMs?: number;
  /** Node drops within one step before the run gives up (default 10). */
  readonly maxNodeFailures?: number;
  /**
   * Drop a node whose shard's per-row gradient norm exceeds this many times the largest of the
   * step's other shards', the recent steps' and the run's so far (default 100; 0: off).
   */
  readonly maxGradRatio?: number;
  /** Shard sizes by thread count or by measured speed (default measured). */
  readonly balance?: 'static' | 'measured';
  /**
   * Float encoding of weights and gradients on node links (default f32). bf16 halves the bytes;
   * sums and the optimizer stay f32, but the numerics change (no bit-identity with local training).
   */
  readonly wire?: 'f32' | 'bf16';
  /**
   * Nodes form a reduction tree cut out of the step's pairwise reduction, and the coordinator sends
   * each step to at most this many of them (default: every node answers the coordinator, the star).
   * Only nodes started with `--listen` take children. The weights are the same whatever the tree
   * with f32 on the wire; with bf16 each hop rounds a partial sum, so the tree's shape shows.
   */
  readonly fanout?: number;
  /** Told the server's URL once it listens. */
  readonly onListening?: (url: string) => void;
}

export interface TrainOptions {
  readonly config: ConfigInput;
  /** A config data source, or your own arrays (default: config.data). */
  readonly data?: DataSource | ArrayDataSplit;
  /** Folder that relative paths in config and data are relative to (default: the working directory). */
  readonly baseDir?: string;
  /** Worker threads (default: every core; 0 only with listen). */
  readonly workers?: number;
  /** Kernel backend (default auto: WebAssembly SIMD where available). */
  readonly kernels?: KernelChoice;
  /** Start from these weights (safetensors). */
  readonly initWeights?: string;
  /** Write the final weights here (safetensors, self-describing). */
  readonly saveWeights?: string;
  /** Folder for checkpoints; none are written without it. */
  readonly checkpointDir?: string;
  /** Steps between checkpoints (default 0: at the end and when aborted only). */
  readonly checkpointEvery?: number;
  /** Continue from the newest checkpoint in checkpointDir. */
  readonly resume?: boolean;
  /** Stop after this many optimizer steps in total (with a checkpoint). */
  readonly maxSteps?: number;
  readonly listen?: ListenOptions;
  /** Stops the run at the next step boundary with a checkpoint, as Ctrl-C does on the CLI. */
  readonly signal?: AbortSignal;
  /** Each optimizer step's record (as in --metrics). */
  readonly onStep?: (record: StepRecord) => void;
  /** Each epoch's record, after its evaluation. */
  readonly onEpoch?: (record: EpochRecord) => void;
  /** Progress and warning lines (default: none are printed). */
  readonly onLog?: (line: string) => void;
}

/** What a model was trained on, how its targets were encoded and which data it can be evaluated on. */
export type EvaluationData = DataSource | ArrayData;

export interface Model {
  /** The description written into its weights files. */
  readonly description: ModelDescription;
  readonly inputs: number;
  readonly outputs: number;
  /** Number of classes for a classifier, 0 for regression. */
  readonly classes: number;
  /** rows × outputs: probabilities for a classifier with cross-entropy (softmax of the logits) or a sigmoid output, else the raw outputs. */
  predict(x: Float32Array, rows: number): Float32Array;
  /** One class per row, decided as `dptrain eval` decides it (classifiers only). */
  classify(x: Float32Array, rows: number): Int32Array;
  /** Loss and accuracy as `dptrain eval`: on a data source's test split, or on these arrays. */
  evaluate(data: EvaluationData, options?: { baseDir?: string }): EvalResult;
  /** Writes the weights (safetensors, with the description in its metadata). */
  save(path: string): void;
  /** A copy of the weights, in the layout of the weights file's tensors, one after another. */
  weights(): Float32Array;
}

export interface TrainResult {
  readonly model: Model;
  /** One record per epoch (resumed runs: the epochs of this call). */
  readonly history: readonly EpochRecord[];
  readonly stoppedBy: StopReason;
  /** Optimizer steps taken in total. */
  readonly steps: number;
  /** The last checkpoint written, if any. */
  readonly checkpoint: string | null;
}

export interface LoadModelOptions {
  /** Describes the model of a file without dptrain metadata (e.g. written by PyTorch): a config object or a config file's path. */
  readonly config?: ConfigInput | string;
  readonly kernels?: KernelChoice;
}
