// Types of sandbox-forwarder.js, which stays plain JavaScript because it runs inside the sandbox with node.
import type { Socket } from 'node:net';

/** Joins two connections both ways; either one failing ends both. */
export function splice(a: Socket, b: Socket): void;
