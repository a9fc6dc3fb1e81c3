/** Public API of privml's ONNX layer: IR, builder, protobuf I/O, shape inference, model info, model zoo. */

export * from './builder.js';
export * from './canonical.js';
export * from './info.js';
export * from './ir.js';
export * from './lower.js';
export * from './npy.js';
export * from './proto.js';
export * from './shape.js';
export * from './zoo/index.js';
