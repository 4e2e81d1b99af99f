/** The version of sleepingd, printed by `sleepingd version` and `-V`. */
export const VERSION = "0.1.0";
