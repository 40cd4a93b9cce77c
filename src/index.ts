// Public API of the package for use outside Node-RED (scripts, the CLI): the streaming-ML engine.
export * from './engine';
