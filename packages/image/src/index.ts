export const packageName = '@berth/image';
