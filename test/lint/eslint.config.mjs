// ESLint for lopt (flat config; kept under test/ because the repository's top level is fixed).
// Run by `npm run lint` and by test/lint.test.ts, so CI runs it with the tests.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,tsx,mjs}'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: { console: 'readonly', process: 'readonly' } },
    rules: {
      // Unused names are errors, except ones that say they are unused.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // Control characters in regular expressions are how lopt finds and escapes them.
      'no-control-regex': 'off',
      // `any` only where a comment says why.
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    // Library code: every random choice comes from a seeded stream (src/random), never Math.random.
    files: ['src/**/*.{ts,tsx}', 'tasks/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'use a seeded stream (src/random/rng.ts): runs must be reproducible' },
      ],
    },
  },
);
