import { InitialSchema1732300000000 } from './1732300000000-initial-schema';

/** Every migration, oldest first. Add new ones at the end. */
export const MIGRATIONS = [InitialSchema1732300000000];
