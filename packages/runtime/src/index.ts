export const packageName = '@berth/runtime';
