/* resp.c: HTTP responses for iplock verify, on llhttp. */
#include "http/resp.h"

#include <string.h>

static int on_headers_complete(llhttp_t *lp)
{
	struct vresp_parser *p = lp->data;

	p->head_done = true;
	p->r->status = lp->status_code;
	if (p->connect && lp->status_code / 100 == 2) {
		p->done = true;          /* the tunnel starts right after this head */
		return HPE_PAUSED;
	}
	return 0;
}

static int on_body(llhttp_t *lp, const char *at, size_t len)
{
	struct vresp_parser *p = lp->data;
	struct vresp *r = p->r;
	size_t room = VRESP_BODY_CAP - r->body_len;

	if (len > room) {
		r->truncated = true;
		len = room;
	}
	memcpy(r->body + r->body_len, at, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static int on_message_complete(llhttp_t *lp)
{
	((struct vresp_parser *)lp->data)->done = true;
	return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void vresp_parser_init(struct vresp_parser *p, struct vresp *out, bool connect)
{
	memset(p, 0, sizeof(*p));
	llhttp_init(&p->parser, HTTP_RESPONSE, &settings);
	p->parser.data = p;
	p->r = out;
	p->connect = connect;
	out->status = 0;
	out->body_len = 0;
	out->body[0] = '\0';
	out->truncated = false;
}

enum vresp_result vresp_parser_feed(struct vresp_parser *p, const char *data, size_t len,
				    size_t *used, const char **err)
{
	*used = 0;
	if (p->done)
		return VRESP_DONE;
	llhttp_errno_t e = llhttp_execute(&p->parser, data, len);
	if (e == HPE_OK) {
		*used = len;
		return VRESP_MORE;
	}
	if (e == HPE_PAUSED && p->done) {
		*used = (size_t)(llhttp_get_error_pos(&p->parser) - data);
		return VRESP_DONE;
	}
	*err = llhttp_errno_name(e);
	return VRESP_ERROR;
}

enum vresp_result vresp_parser_eof(struct vresp_parser *p, const char **err)
{
	if (p->done)
		return VRESP_DONE;
	if (p->head_done) {
		/* a body that ends at close: llhttp completes the message (our callback pauses) */
		llhttp_errno_t e = llhttp_finish(&p->parser);
		if ((e == HPE_OK || e == HPE_PAUSED) && p->done)
			return VRESP_DONE;
	}
	*err = p->head_done ? "the connection closed in the middle of the response"
			    : "the connection closed before a response";
	return VRESP_ERROR;
}
