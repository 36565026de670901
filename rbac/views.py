from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.throttling import ScopedRateThrottle
from rbac.serializers import MeSerializer, TokenRequestSerializer, TokenSerializer
from rbac.services import token_issue


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="The signed-in user")
    def get(self, request: Request) -> Response:
        user = get_user_model().objects.prefetch_related("departments").get(pk=request.user.pk or 0)
        return Response(MeSerializer(user).data)


class TokenView(APIView):
    """Exchange a username and password for an API token (``Authorization: Token <key>``)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=TokenRequestSerializer, responses=TokenSerializer, summary="Get an API token")
    def post(self, request: Request) -> Response:
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = token_issue(request=request._request, **serializer.validated_data)
        return Response(TokenSerializer({"token": token.key}).data)
