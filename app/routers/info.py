"""The model card of the served model."""

from fastapi import APIRouter

from app.dependencies import Model
from app.schemas import ModelResponse, errors

router = APIRouter(tags=["model"], responses=errors(401, 503))


@router.get("/model", response_model=ModelResponse)
async def model_card(model: Model) -> ModelResponse:
    """What is served: version, latent size, device, the contract the service serves by
    (image shape, classes, preprocessor...), and the card embedded in the model file
    (architecture, training, dataset checksums, test figures)."""
    return ModelResponse(
        version=model.version,
        latent_dim=model.latent_dim,
        device=str(model.device),
        precision=model.settings.precision,
        batching=model.settings.batching,
        capabilities=model.capabilities,
        contract=model.contract.summary(),
        card=model.card,
    )
