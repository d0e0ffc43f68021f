// The part of the WebAssembly JS API dptrain uses (Node 20's @types/node does not declare it and
// lib.dom would bring in the whole browser).

declare namespace WebAssembly {
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
    shared?: boolean;
  }
  class Memory {
    constructor(descriptor: MemoryDescriptor);
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(delta: number): number;
  }
  class Module {
    constructor(bytes: BufferSource);
    static imports(module: Module): { module: string; name: string; kind: string }[];
  }
  type ExportValue = Function | Memory | Global | Table;
  type Exports = Record<string, ExportValue>;
  class Instance {
    constructor(module: Module, importObject?: Imports);
    readonly exports: Exports;
  }
  class Global {
    value: unknown;
  }
  class Table {
    readonly length: number;
  }
  type ImportValue = ExportValue | number;
  type Imports = Record<string, Record<string, ImportValue>>;
  function validate(bytes: BufferSource): boolean;
  function compile(bytes: BufferSource): Promise<Module>;
  function instantiate(module: Module, importObject?: Imports): Promise<Instance>;
}
