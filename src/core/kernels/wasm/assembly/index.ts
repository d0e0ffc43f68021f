// The WebAssembly kernel module's entry: every export takes byte offsets into the imported shared
// memory (the arena) and keeps no state of its own, so one instance per thread is safe.

export { gemmNT, gemmTN, gemmNN, linearForward, scratchFloats } from './gemm';
export {
  addBias, colSum, relu, reluBackward, leakyRelu, leakyReluBackward, sigmoid, sigmoidBackward, tanh, tanhBackward, copy,
  sumSlots,
} from './elementwise';
export { crossEntropyGrad, squaredErrorGrad } from './loss';
export { exp } from './exp';
export { sgd, adam, sumSgdMomentum } from './optim';
export { peakMulAdd } from './peak';
