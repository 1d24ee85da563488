// Durations as people write them in YAML and chat ("90s", "4h", "3d"), parsed to milliseconds.
import { z } from 'zod';

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A duration in milliseconds, written as a number of ms or as "500ms", "90s", "15m", "24h", "7d". */
export const DurationMsSchema = z.preprocess((value) => {
  if (typeof value !== 'string') return value;
  const match = /^\s*(\d+)\s*(ms|s|m|h|d)\s*$/.exec(value);
  return match ? Number(match[1]) * DURATION_UNITS_MS[match[2] as keyof typeof DURATION_UNITS_MS] : value;
}, z.number({ error: 'must be a duration such as "90s", "15m", "24h" or "7d"' }).int().positive());
