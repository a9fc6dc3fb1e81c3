/** Public API of privml's ONNX layer: IR, builder, protobuf I/O, shape inference, model info, model zoo. */
export * from './ir.js';
export * from './builder.js';
export * from './proto.js';
export * from './shape.js';
export * from './info.js';
export * from './zoo/index.js';
export * from './canonical.js';
export * from './lower.js';
export * from './npy.js';
