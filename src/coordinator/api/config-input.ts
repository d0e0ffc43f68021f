// Config objects handed to the library, validated by the config file's schema with the same
// one-line errors. A run on the caller's arrays has no data source to name: its config gets a
// stand-in that nothing loads (the trainer is handed the arrays; remote nodes receive them inline).

import { resolve } from 'node:path';
import { loadConfig, parseConfig, type Config } from '../../core/config.js';
import { configError } from '../../core/errors.js';
import type { DataSource } from './types.js';

/** Where config errors from the library say they come from. */
export const CONFIG_SOURCE = 'options.config';

const ARRAYS_STAND_IN: DataSource = { source: 'synthetic', name: 'xor' };

export interface ResolvedConfig {
  readonly config: Config;
  /** False when config.data is the stand-in (the data are arrays, or there are none). */
  readonly hasData: boolean;
}

/**
 * `input`: a ConfigInput or a config file's path. `data`: a data source that replaces config.data, 'arrays' when the caller hands in arrays, or
 * 'none' when no data is needed (loading a model).
 */
export function resolveConfig(input: unknown, baseDir: string, data: DataSource | 'arrays' | 'none' | undefined): ResolvedConfig {
  if (typeof input === 'string') return { config: loadConfig(resolve(baseDir, input)), hasData: true };
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw configError(CONFIG_SOURCE, 'must be a config object');
  const json: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  let hasData = true;
  if (typeof data === 'object') json.data = data;
  else if (data === 'arrays' || (data === 'none' && json.data === undefined)) {
    json.data = ARRAYS_STAND_IN;
    hasData = false;
  } else if (json.data === undefined) throw configError(`${CONFIG_SOURCE}: data`, 'required unless options.data gives the data');
  return { config: parseConfig(json, CONFIG_SOURCE, baseDir), hasData };
}
