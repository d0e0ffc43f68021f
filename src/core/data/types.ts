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
  /** Where each row came from, for messages: the file and the 1-based line of each row (CSV). */
  readonly origin?: RowOrigin;
}

export interface RowOrigin {
  readonly file: string;
  /** lines[row]: the file line the row starts on. */
  readonly lines: Int32Array;
}

/** A row as a user finds it: "line 9 of data.csv" where the file is known, else "row 167". */
export function rowName(data: Dataset, row: number): string {
  return data.origin ? `line ${data.origin.lines[row]} of ${data.origin.file} (row ${row})` : `row ${row}`;
}

export interface DataSplit {
  readonly train: Dataset;
  readonly test: Dataset;
}
