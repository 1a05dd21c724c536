export {
  MAX_UWSGI_VARS_BYTES,
  UWSGI_HEADER_BYTES,
  UWSGI_MODIFIER_REQUEST,
  UwsgiRequestReader,
  decodeUwsgiHeader,
  decodeUwsgiVars,
  encodeUwsgiPacket,
  encodeUwsgiVars,
  type UwsgiPacketHeader,
  type UwsgiRequest,
} from './packet.js';
