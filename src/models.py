"""Every table of every domain, imported in one place for Alembic and the tests."""

from src.admin.models import AuditEntry  # noqa: F401
from src.datasets.draft.models import AttributeSpec, Keyframe, LabelClass  # noqa: F401
from src.auth.models import ApiToken, User  # noqa: F401
from src.billing.models import BillingSetting, LedgerEntry, PriceList  # noqa: F401
from src.database import Base  # noqa: F401
from src.datasets.models import Dataset  # noqa: F401
from src.detectors.models import Detector, DetectorEvaluation, MasterDataset  # noqa: F401
from src.quotas.models import QuotaDefault, UserQuota  # noqa: F401
from src.review.models import ReviewFrame, ReviewJob, ReviewTask  # noqa: F401
from src.videos.models import Video  # noqa: F401
from src.webhooks.models import Webhook, WebhookDelivery  # noqa: F401
