// The reference backend: the textbook triple loops, kept as the oracle every fast kernel is tested
// against (and as the fallback of last resort).

import { tsElementwise } from './elementwise.js';
import type { Kernels } from './types.js';

export const naiveKernels: Kernels = {
  name: 'naive',
  ...tsElementwise,

  gemmNT(c, a, b, m, n, k, accumulate) {
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[i * k + p] * b[j * k + p];
        c[i * n + j] = accumulate ? c[i * n + j] + s : s;
      }
  },

  gemmTN(c, a, b, m, n, k, accumulate) {
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[p * m + i] * b[p * n + j];
        c[i * n + j] = accumulate ? c[i * n + j] + s : s;
      }
  },

  gemmNN(c, a, b, m, n, k, accumulate) {
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
        c[i * n + j] = accumulate ? c[i * n + j] + s : s;
      }
  },
};
