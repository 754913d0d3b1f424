/**
 * Type helpers shared by the library (no kernel counterpart).
 */

/** `T` with its `readonly` fields writable: for objects a module builds once and updates in place. */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] };
