// What a data set is to the rest of dptrain: n rows of nIn float32 inputs and their targets.

export interface Dataset {
  readonly name: string;
  readonly n: number;
  readonly nIn: number;
  /** Inputs [n × nIn], row-major. */
  readonly x: Float32Array;
  /** Targets [n × yWidth]: a class index per row (yWidth 1, cross-entropy) or target values. */
  readonly y: Float32Array;
  readonly yWidth: number;
  /** Number of classes for classification data, 0 for regression. */
  readonly classes: number;
}

export interface DataSplit {
  readonly train: Dataset;
  readonly test: Dataset;
}
