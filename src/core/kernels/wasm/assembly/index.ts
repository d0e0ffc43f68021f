// The WebAssembly kernel module's entry: every export takes byte offsets into the imported shared
// memory (the arena) and keeps no state of its own, so one instance per thread is safe.

export { gemmNT, gemmTN, gemmNN, scratchFloats } from './gemm';
export {
  addBias, colSum, relu, reluBackward, leakyRelu, leakyReluBackward, sigmoidBackward, tanhBackward, copy, sumSlots,
} from './elementwise';
export { sgd, adam } from './optim';
export { peakMulAdd } from './peak';
