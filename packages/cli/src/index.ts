export const packageName = '@berth/cli';
