export const packageName = '@berth/registry';
