// The package's entry as asc resolves it (`<package>/index.ts`).
export * from "./assembly/index";
