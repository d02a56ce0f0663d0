/**
 * Unit tests: ts-jest in jsdom. Tests import only modules that need no JupyterLab runtime
 * (the report view, the Models panel, the status model, the highlighter); `@lumino/*` and
 * `@codemirror/*` load through their CommonJS builds.
 */
module.exports = {
  testEnvironment: 'jsdom',
  roots: ['<rootDir>/src'],
  testRegex: 'src/__tests__/.*\\.spec\\.ts$',
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.test.json' }]
  },
  setupFiles: ['<rootDir>/jest.setup.js'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  collectCoverageFrom: ['src/**/*.ts', '!src/**/*.d.ts', '!src/__tests__/**']
};
