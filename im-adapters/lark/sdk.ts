// The Lark SDK, loaded so that it leaves protobufjs as it found it. When it loads, the SDK sets protobufjs's
// `util.Long` to undefined and reconfigures it (for the frames of its WebSocket client, unused here). There
// is one protobufjs in the process, and Temporal's client and worker need its Long for their int64 fields
// (without it: "Cannot read properties of undefined (reading 'fromNumber')" on connecting). Every value
// import of the SDK goes through here; type imports may name the SDK directly.
import { createRequire } from 'node:module';

/** The part of protobufjs/minimal touched here. */
interface Protobuf {
  util: { Long: unknown };
  configure(): void;
}

function loadSdk(): typeof import('@larksuiteoapi/node-sdk') {
  const sdk = require('@larksuiteoapi/node-sdk') as typeof import('@larksuiteoapi/node-sdk');
  // The protobufjs the SDK changed, and the Long that protobufjs picks for itself when it loads.
  const fromSdk = createRequire(require.resolve('@larksuiteoapi/node-sdk'));
  const protobufPath = fromSdk.resolve('protobufjs/minimal');
  const protobuf = fromSdk(protobufPath) as Protobuf;
  protobuf.util.Long = createRequire(protobufPath)('long');
  protobuf.configure();
  return sdk;
}

export const lark = loadSdk();
