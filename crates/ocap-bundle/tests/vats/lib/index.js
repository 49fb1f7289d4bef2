/* Comments mentioning import('x') must not reach the bundle. */
export const double = n => n * 2;
export const mode = process.env.NODE_ENV;
export const lazy = () => import('./never.js');
