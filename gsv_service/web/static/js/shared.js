// Data every view uses, loaded once: the step registry, the options, the TaskConfig schema.

import { api } from "./api.js";

export const shared = { steps: null, options: null, schema: null };

export async function loadShared() {
  const [steps, options] = await Promise.all([api("steps"), api("options")]);
  shared.steps = steps;
  shared.options = options;
  return shared;
}

// The TaskConfig JSON Schema (from the service's OpenAPI document), for the settings the options
// endpoint does not cover: booleans and strings, with their defaults and descriptions.
export async function taskConfigSchema() {
  if (!shared.schema) {
    const doc = await api("/openapi.json");
    shared.schema = doc.components.schemas.TaskConfig;
  }
  return shared.schema;
}

export function stepTitle(name) {
  const s = (shared.steps || []).find((x) => x.name === name);
  return s ? s.title : name;
}
