// Reading request paths safely.

/** The path's segments, decoded; null when the path is not absolute or not validly percent-encoded. */
export function decodeSegments(rawPath: string): string[] | null {
  if (!rawPath.startsWith('/')) return null;
  if (rawPath === '/') return [];
  // Segments are split before decoding so an encoded "/" or ".." can never reach a file system path.
  try {
    return rawPath.slice(1).split('/').map(decodeURIComponent);
  } catch {
    return null;
  }
}

/** A pull request number as written in a URL ("7", never "07" or "7.0"); null for anything else. */
export function parsePullNumber(segment: string | undefined): number | null {
  return segment !== undefined && /^[1-9]\d{0,8}$/.test(segment) ? Number(segment) : null;
}
